// jstat ships no types; declare only what the lab uses (its default export is the jStat object).
declare module "jstat" {
  const jStat: {
    studentt: {
      /** Quantile (inverse CDF) of Student's t with `dof` degrees of freedom. */
      inv(p: number, dof: number): number;
    };
  };
  export default jStat;
}
