-- Matrices side by side: the same headline cell (workload x model) in two "units",
-- each unit an environment (one host x interpreter of one sweep, from matrix) or a
-- hardware profile (pooled hosts of one sweep, from profile_matrix). `harness compare`
-- picks the pairs (--by host | python | profile, one or several --sweep).
--
-- Load after views.sql, in the DuckDB shell:
--     .read analysis/views.sql
--     .read analysis/compare.sql
--     SELECT a_label, b_label, workload, model, speed_ratio, significant
--     FROM compare_pairs WHERE unit_kind = 'profile';
--
-- Cells are matched on (workload, model) of the headline cells, not on cell_key: a
-- 1-CPU host runs a "cpus" pool with 1 worker and a 2-CPU host with 2, and comparing
-- those is the point. same_params says whether the workload parameters agree; when
-- they do not (cpu_bound calibrated per interpreter, two sweeps of different --profile)
-- the times are not comparable and the speedups are compared instead (basis below).

-- One row per unit: what a comparison can match on and the label it shows.
CREATE OR REPLACE VIEW compare_units AS
SELECT 'env' AS unit_kind, e.sweep_id, e.env_id AS unit_id,
       e.host AS hosts, e.python AS pythons, e.python_version, e.implementation,
       coalesce(e.free_threaded, false) AS free_threaded, e.gil_enabled, e.usable_cpus,
       e.cpu_model, e.profile_id,
       e.host || ' ' || regexp_extract(e.python, '[^/]*$') AS label
FROM environments e
WHERE e.status = 'ok' AND e.env_id IS NOT NULL
UNION ALL BY NAME
SELECT 'profile' AS unit_kind, p.sweep_id, p.profile_id AS unit_id,
       p.hosts, p.pythons, p.python_version, p.implementation,
       coalesce(p.free_threaded, false) AS free_threaded, p.gil_enabled, p.usable_cpus,
       p.cpu_model, p.profile_id,
       p.profile_id || ' (' || p.usable_cpus || ' CPU' || CASE WHEN p.usable_cpus = 1 THEN ''
       ELSE 's' END || ', ' || p.python_version
       || CASE WHEN p.free_threaded THEN 't' ELSE '' END || ')' AS label
FROM profiles p;

-- One row per (unit, headline cell) with the cell's 97.5% median interval and its
-- speedup (paired or unpaired: matrix.speedup_method).
CREATE OR REPLACE VIEW compare_unit_cells AS
WITH env_cells AS (
    SELECT 'env' AS unit_kind, m.sweep_id, m.env_id AS unit_id, m.workload, m.model,
           m.workers, m.params::VARCHAR AS params, m.status, m.reason, m.n, m.median_s,
           c.ci975_low_s, c.ci975_high_s, c.ci975_level,
           m.speedup, m.speedup_ci_low, m.speedup_ci_high, m.speedup_ci_level
    FROM matrix m
    JOIN cells c USING (sweep_id, env_id, cell_id)
), profile_cells_h AS (
    SELECT 'profile' AS unit_kind, m.sweep_id, m.profile_id AS unit_id, m.workload, m.model,
           m.workers, m.params::VARCHAR AS params, m.status, m.reason, m.n, m.median_s,
           c.ci975_low_s, c.ci975_high_s, c.ci975_level,
           m.speedup, m.speedup_ci_low, m.speedup_ci_high, m.speedup_ci_level
    FROM profile_matrix m
    JOIN profile_cells c USING (sweep_id, profile_id, cell_key)
)
SELECT * FROM (SELECT * FROM env_cells UNION ALL BY NAME SELECT * FROM profile_cells_h)
QUALIFY row_number() OVER (PARTITION BY unit_kind, sweep_id, unit_id, workload, model
                           ORDER BY n DESC NULLS LAST) = 1;

-- Whether a ratio's interval [lo, hi] excludes 1, at confidence ``level``: NULL when
-- nothing can be said (no interval, or a confidence of 0 from too few repeats).
CREATE OR REPLACE MACRO ratio_significant(level, lo, hi) AS
    CASE WHEN level IS NULL OR level <= 0 THEN NULL ELSE lo > 1 OR hi < 1 END;

-- Every ordered pair of units of one kind, cell by cell. speed_ratio is B's speed
-- relative to A (above 1: B is faster), on one of two bases:
--   basis 'time'     (same workload parameters on both sides): a_median_s / b_median_s,
--                    interval [a_lo / b_hi, a_hi / b_lo] from the two 97.5% median
--                    intervals (order statistics, as in matrix), confidence
--                    >= level_a + level_b - 1 (Bonferroni)
--   basis 'speedup'  (parameters differ, e.g. cpu_bound is calibrated per interpreter
--                    so that a task takes task_s there; times are not comparable):
--                    b_speedup / a_speedup, interval [b_lo / a_hi, b_hi / a_lo] from
--                    the two speedup intervals, confidence >= their levels' sum - 1;
--                    the sequential row is 1 by definition and not tested. Each side's
--                    speedup is its matrix / profile_matrix one: paired within its own
--                    blocks where it has them (speedup_method), so the two sides are
--                    themselves unpaired: no block holds both units
-- ratio_ci_level states that confidence (>= 95% only with 7 repeats or more per cell).
-- significant: the interval excludes 1; null when nothing can be said (a side did not
-- run, the definitional sequential row, or a confidence of 0 from too few repeats).
-- compare_pairs_over(units): the same pairs over any relation shaped as
-- compare_unit_cells, named by a string (e.g. a temp table holding only the units a
-- comparison needs, computed once: `harness compare` does so, as every side of the
-- self join otherwise computes the cells again).
CREATE OR REPLACE MACRO compare_pairs_over(units) AS TABLE
WITH p AS (
    SELECT a.unit_kind, a.workload, a.model,
           a.sweep_id AS a_sweep_id, a.unit_id AS a_unit_id,
           b.sweep_id AS b_sweep_id, b.unit_id AS b_unit_id,
           a.workers AS a_workers, b.workers AS b_workers,
           a.status AS a_status, b.status AS b_status,
           a.reason AS a_reason, b.reason AS b_reason,
           a.n AS a_n, b.n AS b_n, a.median_s AS a_median_s, b.median_s AS b_median_s,
           a.speedup AS a_speedup, a.speedup_ci_low AS a_speedup_ci_low,
           a.speedup_ci_high AS a_speedup_ci_high,
           b.speedup AS b_speedup, b.speedup_ci_low AS b_speedup_ci_low,
           b.speedup_ci_high AS b_speedup_ci_high,
           a.params IS NOT DISTINCT FROM b.params AS same_params,
           CASE WHEN a.params IS NOT DISTINCT FROM b.params THEN 'time' ELSE 'speedup' END
               AS basis,
           a.n > 0 AND b.n > 0 AS both_ran,
           a.ci975_low_s AS a_lo, a.ci975_high_s AS a_hi, a.ci975_level AS a_level,
           b.ci975_low_s AS b_lo, b.ci975_high_s AS b_hi, b.ci975_level AS b_level,
           a.speedup_ci_level AS a_sp_level, b.speedup_ci_level AS b_sp_level
    FROM query_table(units) a
    JOIN query_table(units) b
      ON a.unit_kind = b.unit_kind AND a.workload = b.workload AND a.model = b.model
     AND (a.sweep_id <> b.sweep_id OR a.unit_id <> b.unit_id)
), r AS (
    SELECT *,
           CASE WHEN NOT both_ran THEN NULL
                WHEN basis = 'time' THEN a_median_s / nullif(b_median_s, 0)
                ELSE b_speedup / nullif(a_speedup, 0) END AS speed_ratio,
           CASE WHEN NOT both_ran THEN NULL
                WHEN basis = 'time' THEN a_lo / nullif(b_hi, 0)
                ELSE b_speedup_ci_low / nullif(a_speedup_ci_high, 0) END AS ratio_ci_low,
           CASE WHEN NOT both_ran THEN NULL
                WHEN basis = 'time' THEN a_hi / nullif(b_lo, 0)
                ELSE b_speedup_ci_high / nullif(a_speedup_ci_low, 0) END AS ratio_ci_high,
           CASE WHEN NOT both_ran THEN NULL
                WHEN basis = 'time' THEN greatest(0.0, a_level + b_level - 1)
                WHEN a_sp_level IS NULL OR b_sp_level IS NULL THEN NULL
                ELSE greatest(0.0, a_sp_level + b_sp_level - 1) END AS ratio_ci_level
    FROM p
)
SELECT * EXCLUDE (both_ran, a_lo, a_hi, a_level, b_lo, b_hi, b_level, a_sp_level, b_sp_level),
       ratio_significant(ratio_ci_level, ratio_ci_low, ratio_ci_high) AS significant
FROM r;

CREATE OR REPLACE VIEW compare_pairs AS
SELECT * FROM compare_pairs_over('compare_unit_cells');
