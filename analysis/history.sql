-- Sweeps over time: the same cell of the same environment in every sweep that ran it.
-- An environment across sweeps is (host, python, profile_id): the same inventory host,
-- the same interpreter path, the same hardware profile (CPU model, usable CPUs, NUMA
-- layout, memory in GiB, Python version and build). A cell is its cell_key (workload,
-- params, model, workers): the planned cell, the same in every sweep.
--
-- Load after views.sql and compare.sql, in the DuckDB shell:
--     .read analysis/views.sql
--     .read analysis/compare.sql
--     .read analysis/history.sql
--     SELECT sweep_no, sweep_id, model, median_s, speedup FROM history
--     WHERE host = 'localhost' AND workload = 'cpu_bound' ORDER BY model, sweep_no;
--
-- The view `changes` (the detected steps) is not here: harness computes it in Python
-- (harness/warehouse/steps.py, from history_series below) in each connection whose SQL
-- names it, e.g. `harness sql "SELECT * FROM changes"`; the DuckDB shell lacks it.

-- One row per environment x cell x sweep: the cell's median time with its 95% and
-- 97.5% intervals (cells) and, for a headline cell, its speedup with its interval
-- (matrix: paired within the sweep's blocks where it can be).
CREATE OR REPLACE VIEW history_cells AS
SELECT e.host, e.python, e.profile_id, c.cell_key, c.workload, c.model, c.workers,
       c.params::VARCHAR AS params, c.headline, c.sweep_id, s.started_at, c.env_id,
       c.cell_id, c.status, c.reason, c.n, c.median_s, c.ci_low_s, c.ci_high_s, c.ci_level,
       c.ci975_low_s, c.ci975_high_s, c.ci975_level,
       m.speedup, m.speedup_ci_low, m.speedup_ci_high, m.speedup_ci_level, m.speedup_method,
       e.python_version, e.free_threaded, e.usable_cpus, e.cpu_model
FROM cells c
JOIN environments e USING (sweep_id, env_id)
LEFT JOIN sweeps s USING (sweep_id)
LEFT JOIN matrix m USING (sweep_id, env_id, cell_id)
WHERE c.cell_key IS NOT NULL;

-- history_cells with each row's place in its series: sweep_no 1 is the environment's
-- oldest sweep of that cell (by started_at, then sweep_id), n_sweeps how many there are.
CREATE OR REPLACE VIEW history AS
SELECT *,
       row_number() OVER series AS sweep_no,
       count(*) OVER (PARTITION BY host, python, profile_id, cell_key) AS n_sweeps
FROM history_cells
WINDOW series AS (PARTITION BY host, python, profile_id, cell_key
                  ORDER BY started_at NULLS FIRST, sweep_id);

-- One row per series (environment x cell): its sweeps oldest first and, in the same
-- order, the medians, their 97.5% intervals (the ones compare_sweeps combines), the
-- speedups and their intervals (NULL where a sweep has no value). The input of the step
-- detection behind `changes`.
CREATE OR REPLACE VIEW history_series AS
SELECT host, python, profile_id, cell_key,
       any_value(workload) AS workload, any_value(model) AS model,
       any_value(workers) AS workers, any_value(params) AS params,
       bool_or(headline) AS headline, count(*) AS n_sweeps,
       list(sweep_id ORDER BY sweep_no) AS sweep_ids,
       list(median_s ORDER BY sweep_no) AS medians,
       list(ci975_low_s ORDER BY sweep_no) AS lows,
       list(ci975_high_s ORDER BY sweep_no) AS highs,
       list(speedup ORDER BY sweep_no) AS speedups,
       list(speedup_ci_low ORDER BY sweep_no) AS speedup_lows,
       list(speedup_ci_high ORDER BY sweep_no) AS speedup_highs
FROM history
GROUP BY host, python, profile_id, cell_key;

-- Two sweeps of one environment, cell by cell (`harness compare --by sweep`): every
-- ordered pair of sweeps (a = the baseline, b = the other) holding the same cell of
-- the same environment.
--   time:     speed_ratio = a_median_s / b_median_s, B's speed relative to A (above 1:
--             B is faster), interval [a_lo / b_hi, a_hi / b_lo] from the two 97.5%
--             median intervals and confidence >= their levels' sum - 1 (Bonferroni):
--             the computation of compare_pairs' 'time' basis, with its macros.
--   speedup:  speedup_change = b_speedup / a_speedup (above 1: B's speedup is higher),
--             interval [b_lo / a_hi, b_hi / a_lo] from the two speedup intervals,
--             confidence >= their levels' sum - 1. Each speedup is paired within its own
--             sweep's blocks, but no block holds both sweeps: across sweeps the ratio is
--             unpaired. The sequential row is 1 by definition and not tested.
-- significant: the interval excludes 1 (NULL when untestable: a side without repeats or
-- a confidence of 0); time_change / speedup_change_kind: 'faster' / 'slower' ('higher'
-- / 'lower'), 'unchanged' when not significant, NULL when untestable.
CREATE OR REPLACE VIEW compare_sweeps AS
WITH p AS (
    SELECT a.host, a.python, a.profile_id, a.cell_key, a.workload, a.model, a.workers,
           a.params, a.headline,
           a.sweep_id AS a_sweep_id, b.sweep_id AS b_sweep_id,
           a.env_id AS a_env_id, b.env_id AS b_env_id,
           a.status AS a_status, b.status AS b_status,
           a.reason AS a_reason, b.reason AS b_reason, a.n AS a_n, b.n AS b_n,
           a.median_s AS a_median_s, b.median_s AS b_median_s,
           speedup_ratio(false, b.n, a.n, a.median_s, b.median_s) AS speed_ratio,
           speedup_ratio(false, b.n, a.n, a.ci975_low_s, b.ci975_high_s) AS ratio_ci_low,
           speedup_ratio(false, b.n, a.n, a.ci975_high_s, b.ci975_low_s) AS ratio_ci_high,
           speedup_level(false, b.n, a.n, b.ci975_level, a.ci975_level) AS ratio_ci_level,
           a.speedup AS a_speedup, a.speedup_ci_low AS a_speedup_ci_low,
           a.speedup_ci_high AS a_speedup_ci_high,
           b.speedup AS b_speedup, b.speedup_ci_low AS b_speedup_ci_low,
           b.speedup_ci_high AS b_speedup_ci_high,
           a.speedup_method AS a_speedup_method, b.speedup_method AS b_speedup_method,
           b.speedup / nullif(a.speedup, 0) AS speedup_change,
           b.speedup_ci_low / nullif(a.speedup_ci_high, 0) AS speedup_change_ci_low,
           b.speedup_ci_high / nullif(a.speedup_ci_low, 0) AS speedup_change_ci_high,
           CASE WHEN a.speedup_ci_level IS NOT NULL AND b.speedup_ci_level IS NOT NULL
                THEN greatest(0.0, a.speedup_ci_level + b.speedup_ci_level - 1) END
               AS speedup_change_ci_level
    FROM history_cells a
    JOIN history_cells b
      ON a.host = b.host AND a.python = b.python
     AND a.profile_id IS NOT DISTINCT FROM b.profile_id
     AND a.cell_key = b.cell_key AND a.sweep_id <> b.sweep_id
), s AS (
    SELECT *,
           ratio_significant(ratio_ci_level, ratio_ci_low, ratio_ci_high) AS significant,
           ratio_significant(speedup_change_ci_level, speedup_change_ci_low,
                             speedup_change_ci_high) AS speedup_significant
    FROM p
)
SELECT *,
       CASE WHEN significant THEN CASE WHEN speed_ratio > 1 THEN 'faster' ELSE 'slower' END
            WHEN NOT significant THEN 'unchanged' END AS time_change,
       CASE WHEN speedup_significant THEN CASE WHEN speedup_change > 1 THEN 'higher'
                                               ELSE 'lower' END
            WHEN NOT speedup_significant THEN 'unchanged' END AS speedup_change_kind
FROM s;
