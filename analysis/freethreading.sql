-- Free-threaded against standard, the same version on the same host: what the
-- free-threaded build costs a single thread (the sequential cells).
--
-- Load after views.sql and compare.sql, in the DuckDB shell:
--     .read analysis/views.sql
--     .read analysis/compare.sql
--     .read analysis/freethreading.sql
--     SELECT host, std_label, ft_label, workload, ft_over_std, ratio_ci_low, ratio_ci_high
--     FROM ft_overhead;
--
-- The 3.13 docs put the single-thread cost of the free-threaded build at about 40% on
-- pyperformance; What's New in 3.14 says 5-10% for 3.14t. `harness provision --python
-- 3.13 --python 3.13t` puts both builds of one version on every host.

-- One row per pair of builds compared: in one sweep, on one host, a standard and a
-- free-threaded environment of the same major.minor (e.g. 3.13.5 and 3.13.5t).
CREATE OR REPLACE VIEW ft_pairs AS
SELECT f.sweep_id, f.host,
       regexp_extract(f.python_version, '^([0-9]+[.][0-9]+)', 1) AS minor,
       s.env_id AS std_env_id, s.python AS std_python, s.python_version AS std_version,
       f.env_id AS ft_env_id, f.python AS ft_python, f.python_version AS ft_version,
       f.gil_enabled AS ft_gil_enabled,
       f.host || ' ' || regexp_extract(s.python, '[^/]*$') AS std_label,
       f.host || ' ' || regexp_extract(f.python, '[^/]*$') AS ft_label
FROM environments f
JOIN environments s
  ON s.sweep_id = f.sweep_id AND s.host = f.host
 AND regexp_extract(s.python_version, '^([0-9]+[.][0-9]+)', 1)
     = regexp_extract(f.python_version, '^([0-9]+[.][0-9]+)', 1)
WHERE coalesce(f.free_threaded, false) AND NOT coalesce(s.free_threaded, false)
  AND f.status = 'ok' AND s.status = 'ok'
  AND f.env_id IS NOT NULL AND s.env_id IS NOT NULL;

-- Per pair and workload: the free-threaded build's sequential time over the standard
-- build's (ft_over_std above 1: the free-threaded build is slower; overhead_pct =
-- (ft_over_std - 1) * 100), with its interval, as compare_pairs does:
--   basis 'time'           both cells ran the same parameters: ft median / std median,
--                          interval [ft_lo / std_hi, ft_hi / std_lo] from the two 97.5%
--                          median intervals (order statistics), confidence >= the sum
--                          of their levels - 1 (Bonferroni)
--   basis 'per_iteration'  the parameters differ but both name the loop size n (cpu_bound
--                          is sized per interpreter, n = task_s x its own rate): the same
--                          ratio and interval per iteration, each time divided by its n
--   basis NULL             neither: no ratio (the reason says why)
-- significant: the interval excludes 1 (ratio_significant of compare.sql).
CREATE OR REPLACE VIEW ft_overhead AS
WITH seq AS (
    SELECT sweep_id, env_id, workload, params, status, n, median_s,
           ci975_low_s, ci975_high_s, ci975_level,
           TRY_CAST(params->>'n' AS DOUBLE) AS loop_n
    FROM cells
    WHERE model = 'sequential' AND headline
), j AS (
    SELECT p.*, s.workload, s.status AS std_status, f.status AS ft_status,
           s.n AS std_n, f.n AS ft_n, s.median_s AS std_median_s, f.median_s AS ft_median_s,
           s.loop_n AS std_loop_n, f.loop_n AS ft_loop_n,
           CASE WHEN s.n = 0 OR f.n = 0 THEN NULL
                WHEN s.params IS NOT DISTINCT FROM f.params THEN 'time'
                WHEN s.loop_n > 0 AND f.loop_n > 0 THEN 'per_iteration' END AS basis,
           s.ci975_low_s AS s_lo, s.ci975_high_s AS s_hi, s.ci975_level AS s_level,
           f.ci975_low_s AS f_lo, f.ci975_high_s AS f_hi, f.ci975_level AS f_level
    FROM ft_pairs p
    JOIN seq s ON s.sweep_id = p.sweep_id AND s.env_id = p.std_env_id
    JOIN seq f ON f.sweep_id = p.sweep_id AND f.env_id = p.ft_env_id
              AND f.workload = s.workload
), r AS (
    SELECT *,
           CASE basis WHEN 'time' THEN 1.0
                      WHEN 'per_iteration' THEN std_loop_n / ft_loop_n END AS scale
    FROM j
), q AS (
    SELECT *,
           ft_median_s / nullif(std_median_s, 0) * scale AS ft_over_std,
           f_lo / nullif(s_hi, 0) * scale AS ratio_ci_low,
           f_hi / nullif(s_lo, 0) * scale AS ratio_ci_high,
           CASE WHEN basis IS NOT NULL THEN greatest(0.0, f_level + s_level - 1) END
               AS ratio_ci_level
    FROM r
)
SELECT sweep_id, host, minor, std_label, ft_label, std_python, ft_python,
       std_version, ft_version, ft_gil_enabled, workload, basis,
       std_status, ft_status, std_n, ft_n, std_median_s, ft_median_s,
       std_loop_n, ft_loop_n,
       ft_over_std, ratio_ci_low, ratio_ci_high, ratio_ci_level,
       (ft_over_std - 1) * 100 AS overhead_pct,
       ratio_significant(ratio_ci_level, ratio_ci_low, ratio_ci_high) AS significant,
       CASE WHEN std_n = 0 OR ft_n = 0 THEN 'a build has no good sequential repeats'
            WHEN basis IS NULL THEN 'the two cells ran different parameters'
       END AS reason
FROM q
ORDER BY sweep_id, host, minor, workload;

-- Per pair of builds (ft_pairs) and worker count: what threads gain on CPU-bound work,
-- the free-threaded build beside the standard one. The speedups are the matrix's and the
-- dimension views' (paired, median of per-block ratios, with their 95% intervals): the
-- headline cpu_bound/threads cell and the points of its 'workers' dimension, the latter
-- where both exist at one worker count. On the free-threaded build also its 'gil'
-- dimension at that worker count: threads with PYTHON_GIL=0 and with PYTHON_GIL=1
-- (gil_on_*: the GIL forced back on, the standard build's behaviour in the free-threaded
-- build). A build that did not run a worker count has NULLs there.
CREATE OR REPLACE VIEW ft_parallel_gain AS
WITH t AS (
    SELECT sweep_id, env_id, workers, speedup, speedup_ci_low, speedup_ci_high,
           'headline' AS source
    FROM matrix WHERE workload = 'cpu_bound' AND model = 'threads'
    UNION ALL
    SELECT sweep_id, env_id, workers, speedup, speedup_ci_low, speedup_ci_high, 'workers'
    FROM dimension_cells
    WHERE workload = 'cpu_bound' AND model = 'threads' AND dimension = 'workers'
), w AS (
    SELECT * FROM t
    QUALIFY row_number() OVER (PARTITION BY sweep_id, env_id, workers
                               ORDER BY source = 'workers' DESC) = 1
), g AS (
    SELECT sweep_id, env_id, workers,
           any_value(speedup) FILTER (WHERE gil = 0) AS gil_off_speedup,
           any_value(speedup_ci_low) FILTER (WHERE gil = 0) AS gil_off_ci_low,
           any_value(speedup_ci_high) FILTER (WHERE gil = 0) AS gil_off_ci_high,
           any_value(speedup) FILTER (WHERE gil = 1) AS gil_on_speedup,
           any_value(speedup_ci_low) FILTER (WHERE gil = 1) AS gil_on_ci_low,
           any_value(speedup_ci_high) FILTER (WHERE gil = 1) AS gil_on_ci_high
    FROM dimension_cells
    WHERE workload = 'cpu_bound' AND model = 'threads' AND dimension = 'gil'
    GROUP BY ALL
), ks AS (  -- every worker count either build ran
    SELECT p.*, w.workers FROM ft_pairs p JOIN w ON w.sweep_id = p.sweep_id
                                                AND w.env_id IN (p.std_env_id, p.ft_env_id)
    UNION
    SELECT p.*, g.workers FROM ft_pairs p JOIN g ON g.sweep_id = p.sweep_id
                                                AND g.env_id = p.ft_env_id
)
SELECT k.sweep_id, k.host, k.minor, k.std_python, k.std_version, k.ft_python, k.ft_version,
       k.std_label, k.ft_label, k.workers,
       s.speedup AS std_speedup, s.speedup_ci_low AS std_ci_low,
       s.speedup_ci_high AS std_ci_high,
       f.speedup AS ft_speedup, f.speedup_ci_low AS ft_ci_low, f.speedup_ci_high AS ft_ci_high,
       g.gil_off_speedup, g.gil_off_ci_low, g.gil_off_ci_high,
       g.gil_on_speedup, g.gil_on_ci_low, g.gil_on_ci_high
FROM ks k
LEFT JOIN w s ON s.sweep_id = k.sweep_id AND s.env_id = k.std_env_id AND s.workers = k.workers
LEFT JOIN w f ON f.sweep_id = k.sweep_id AND f.env_id = k.ft_env_id AND f.workers = k.workers
LEFT JOIN g ON g.sweep_id = k.sweep_id AND g.env_id = k.ft_env_id AND g.workers = k.workers;
