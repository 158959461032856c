-- The facts `harness report` prints beyond the matrix: sweep summaries, what failed
-- and why, and a decision guide derived from the measurements.
--
-- Load after views.sql and claims.sql, in the DuckDB shell:
--     .read analysis/views.sql
--     .read analysis/claims.sql
--     .read analysis/report.sql
--     SELECT * FROM sweep_summary;
--     SELECT profile_id, workload, recommendation, best_speedup FROM decisions;

------------------------------------------------------------------ sweeps

-- One row per sweep: when, how long, status, and how many environments and cells
-- ended how. Cells count by cells.status (ok, partial, failed, timeout, not_applicable).
CREATE OR REPLACE VIEW sweep_summary AS
WITH env AS (
    SELECT sweep_id,
           count(*) AS n_envs,
           count(*) FILTER (WHERE status = 'ok') AS n_envs_ok,
           count(*) FILTER (WHERE status <> 'ok') AS n_envs_failed,
           count(DISTINCT host) AS n_hosts,
           count(DISTINCT profile_id) AS n_profiles
    FROM environments GROUP BY sweep_id
), c AS (
    SELECT sweep_id,
           count(*) AS n_cells,
           count(*) FILTER (WHERE status = 'ok') AS n_cells_ok,
           count(*) FILTER (WHERE status = 'partial') AS n_cells_partial,
           count(*) FILTER (WHERE status = 'failed') AS n_cells_failed,
           count(*) FILTER (WHERE status = 'timeout') AS n_cells_timeout,
           count(*) FILTER (WHERE status = 'not_applicable') AS n_cells_not_applicable,
           sum(n) AS n_repeats
    FROM cells GROUP BY sweep_id
)
SELECT s.sweep_id, s.started_at, s.finished_at,
       epoch(s.finished_at) - epoch(s.started_at) AS duration_s,
       s.status, s.inventory, s.profile, s.harness_version,
       coalesce(env.n_hosts, 0) AS n_hosts, coalesce(env.n_envs, 0) AS n_envs,
       coalesce(env.n_envs_ok, 0) AS n_envs_ok, coalesce(env.n_envs_failed, 0) AS n_envs_failed,
       coalesce(env.n_profiles, 0) AS n_profiles,
       coalesce(c.n_cells, 0) AS n_cells, coalesce(c.n_cells_ok, 0) AS n_cells_ok,
       coalesce(c.n_cells_partial, 0) AS n_cells_partial,
       coalesce(c.n_cells_failed, 0) AS n_cells_failed,
       coalesce(c.n_cells_timeout, 0) AS n_cells_timeout,
       coalesce(c.n_cells_not_applicable, 0) AS n_cells_not_applicable,
       coalesce(c.n_repeats, 0) AS n_repeats
FROM sweeps s
LEFT JOIN env USING (sweep_id)
LEFT JOIN c USING (sweep_id);

-- What did not run and why: failed environments (unreachable host, probe failure) and
-- every cell whose status is not ok (partial, failed, timeout, not_applicable), with
-- its reason. kind: 'environment' or the cell status.
CREATE OR REPLACE VIEW sweep_problems AS
SELECT e.sweep_id, 'environment' AS kind, e.host, e.python, NULL::VARCHAR AS workload,
       NULL::VARCHAR AS model, NULL::BIGINT AS workers, e.status,
       coalesce(e.error, 'environment ' || e.status) AS reason
FROM environments e
WHERE e.status <> 'ok'
UNION ALL
SELECT c.sweep_id, c.status AS kind, e.host, e.python, c.workload, c.model, c.workers,
       c.status, c.reason
FROM cells c
LEFT JOIN environments e USING (sweep_id, env_id)
WHERE c.status <> 'ok';

------------------------------------------------------------------ decision guide

-- Per (sweep, profile, workload): the model to use, from the headline cells that
-- ran. The fastest model (lowest median time) leads significantly over another model
-- when their 97.5% median intervals do not overlap (the test compare_pairs uses;
-- Bonferroni confidence >= level_a + level_b - 1). `choices` lists the fastest and
-- every model not significantly slower; the recommendation is the fastest alone when
-- that list has one entry, else "any of ...". sequential is a candidate: when it is
-- among the choices, concurrency brought no significant gain here.
-- guide_choice: the guide's column with the highest claimed speedup for the workload.
CREATE OR REPLACE VIEW decision_cells AS
SELECT m.sweep_id, m.profile_id, m.workload, m.model, m.workers, m.n, m.status,
       m.median_s, m.speedup, m.speedup_ci_low, m.speedup_ci_high,
       c.ci975_low_s, c.ci975_high_s, c.ci975_level
FROM profile_matrix m
JOIN profile_cells c USING (sweep_id, profile_id, cell_key)
WHERE m.n > 0 AND m.median_s IS NOT NULL AND m.speedup IS NOT NULL;

CREATE OR REPLACE VIEW decisions AS
WITH best AS (
    SELECT * FROM decision_cells
    QUALIFY row_number() OVER (PARTITION BY sweep_id, profile_id, workload
                               ORDER BY median_s, model) = 1
), marked AS (
    SELECT d.*, b.model AS best_model, b.speedup AS best_speedup, b.median_s AS best_median_s,
           b.speedup_ci_low AS best_speedup_ci_low, b.speedup_ci_high AS best_speedup_ci_high,
           d.model = b.model
               OR (d.ci975_low_s <= b.ci975_high_s AND b.ci975_low_s <= d.ci975_high_s) AS tied,
           greatest(0.0, d.ci975_level + b.ci975_level - 1) AS pair_level
    FROM decision_cells d
    JOIN best b USING (sweep_id, profile_id, workload)
), guide AS (
    SELECT workload, arg_max(guide_column, claim_high) AS guide_choice,
           arg_max(claim_text, claim_high) AS guide_claim
    FROM guide_table GROUP BY workload
)
SELECT sweep_id, profile_id, workload,
       any_value(best_model) AS best_model,
       any_value(best_speedup) AS best_speedup,
       any_value(best_speedup_ci_low) AS best_speedup_ci_low,
       any_value(best_speedup_ci_high) AS best_speedup_ci_high,
       list(model ORDER BY median_s) FILTER (WHERE tied) AS choices,
       count(*) FILTER (WHERE tied) = 1 AS significant_lead,
       CASE WHEN count(*) FILTER (WHERE tied) = 1 THEN any_value(best_model)
            ELSE 'any of ' || string_agg(model, ', ' ORDER BY median_s) FILTER (WHERE tied)
       END AS recommendation,
       -- the fastest model that is significantly slower than the best, and by how much
       arg_min(model, median_s) FILTER (WHERE NOT tied) AS next_model,
       min(median_s) FILTER (WHERE NOT tied) / any_value(best_median_s) AS next_slowdown,
       min(pair_level) FILTER (WHERE model <> best_model) AS min_pair_level,
       count(*) AS n_models,
       any_value(g.guide_choice) AS guide_choice,
       any_value(g.guide_claim) AS guide_claim
FROM marked
LEFT JOIN guide g USING (workload)
GROUP BY sweep_id, profile_id, workload;
