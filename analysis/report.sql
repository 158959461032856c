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
-- ran. The fastest model (lowest pooled median time) is compared with every other
-- model, and `choices` lists it and every model not significantly slower; the
-- recommendation is the fastest alone when that list has one entry, else "any of ...".
-- sequential is a candidate: when it is among the choices, concurrency brought no
-- significant gain here, so no recommendation rests on an inconclusive comparison.
-- How two models are compared (decision_pairs):
--   paired    the cells ran interleaved in blocks (samples.block, block_group): per
--             block, ratio = wall time of the model / wall time of the fastest, both
--             timed in the same (env, block_group, block), pooled over the envs of the
--             profile. The ratio's median and its 95% order-statistic interval (the
--             median_ci_rank_low/high rule of views.sql, z = 1.96; pair_level its exact
--             coverage). Not significantly slower (tied) when the interval's low end is
--             <= 1: it contains 1, or lies wholly below 1 (then the per-block ratios find
--             the model faster than the fastest by pooled medians, which happens when
--             hosts of one profile differ; it stays among the choices).
--   unpaired  no block in common (data from before blocks): tied when the two cells'
--             97.5% median intervals overlap (the test compare_pairs uses; Bonferroni
--             confidence >= level_a + level_b - 1).
-- guide_choice: the guide's column with the highest claimed speedup for the workload.
CREATE OR REPLACE VIEW decision_cells AS
SELECT m.sweep_id, m.profile_id, m.workload, m.model, m.workers, m.cell_key, m.n, m.status,
       m.median_s, m.speedup, m.speedup_ci_low, m.speedup_ci_high,
       c.ci975_low_s, c.ci975_high_s, c.ci975_level
FROM profile_matrix m
JOIN profile_cells c USING (sweep_id, profile_id, cell_key)
WHERE m.n > 0 AND m.median_s IS NOT NULL AND m.speedup IS NOT NULL;

-- The timed good wall time of every headline cell in every block it ran in (at most
-- one per cell and block by construction; the median guards against a duplicate).
CREATE OR REPLACE VIEW decision_blocks AS
SELECT sweep_id, profile_id, env_id, block_group, block, pool_key AS cell_key,
       median(wall_s) AS wall_s
FROM samples
WHERE timed AND good AND block IS NOT NULL AND coalesce(headline, false)
GROUP BY sweep_id, profile_id, env_id, block_group, block, pool_key;

-- One row per (sweep, profile, workload, model): the model against the fastest.
-- ratio: its time over the fastest's (above 1: slower), paired or unpaired (method);
-- ratio_ci_low/high and pair_level as described above; n_blocks: the blocks both ran in.
CREATE OR REPLACE VIEW decision_pairs AS
WITH best AS (
    SELECT * FROM decision_cells
    QUALIFY row_number() OVER (PARTITION BY sweep_id, profile_id, workload
                               ORDER BY median_s, model) = 1
), per_block AS (
    SELECT d.sweep_id, d.profile_id, d.workload, d.model,
           list_sort(list(xd.wall_s / xb.wall_s)) AS rs
    FROM decision_cells d
    JOIN best b ON b.sweep_id = d.sweep_id AND b.profile_id = d.profile_id
               AND b.workload = d.workload AND b.model <> d.model
    JOIN decision_blocks xd ON xd.sweep_id = d.sweep_id AND xd.profile_id = d.profile_id
                           AND xd.cell_key = d.cell_key
    JOIN decision_blocks xb ON xb.sweep_id = b.sweep_id AND xb.profile_id = b.profile_id
                           AND xb.cell_key = b.cell_key AND xb.env_id = xd.env_id
                           AND xb.block_group = xd.block_group AND xb.block = xd.block
    WHERE xb.wall_s > 0
    GROUP BY d.sweep_id, d.profile_id, d.workload, d.model
), ranked AS (
    SELECT *, len(rs) AS n_blocks,
           median_ci_rank_low(len(rs), 1.96) AS j, median_ci_rank_high(len(rs), 1.96) AS k
    FROM per_block
), paired AS (
    SELECT sweep_id, profile_id, workload, model, n_blocks,
           list_aggregate(rs, 'median')::DOUBLE AS ratio,
           rs[j] AS ratio_ci_low, rs[k] AS ratio_ci_high,
           median_ci_level(n_blocks, j, k) AS pair_level
    FROM ranked
)
SELECT d.sweep_id, d.profile_id, d.workload, d.model, d.median_s, d.speedup,
       d.speedup_ci_low, d.speedup_ci_high,
       b.model AS best_model, b.median_s AS best_median_s, b.speedup AS best_speedup,
       b.speedup_ci_low AS best_speedup_ci_low, b.speedup_ci_high AS best_speedup_ci_high,
       CASE WHEN d.model = b.model THEN NULL
            WHEN p.model IS NOT NULL THEN 'paired' ELSE 'unpaired' END AS method,
       coalesce(p.n_blocks, 0) AS n_blocks,
       CASE WHEN d.model = b.model THEN 1.0
            WHEN p.model IS NOT NULL THEN p.ratio
            ELSE d.median_s / b.median_s END AS ratio,
       CASE WHEN d.model = b.model THEN NULL
            WHEN p.model IS NOT NULL THEN p.ratio_ci_low
            ELSE d.ci975_low_s / nullif(b.ci975_high_s, 0) END AS ratio_ci_low,
       CASE WHEN d.model = b.model THEN NULL
            WHEN p.model IS NOT NULL THEN p.ratio_ci_high
            ELSE d.ci975_high_s / nullif(b.ci975_low_s, 0) END AS ratio_ci_high,
       CASE WHEN d.model = b.model THEN NULL
            WHEN p.model IS NOT NULL THEN p.pair_level
            ELSE greatest(0.0, d.ci975_level + b.ci975_level - 1) END AS pair_level,
       CASE WHEN d.model = b.model THEN true
            WHEN p.model IS NOT NULL THEN p.ratio_ci_low <= 1
            ELSE d.ci975_low_s <= b.ci975_high_s AND b.ci975_low_s <= d.ci975_high_s
       END AS tied
FROM decision_cells d
JOIN best b USING (sweep_id, profile_id, workload)
LEFT JOIN paired p ON p.sweep_id = d.sweep_id AND p.profile_id = d.profile_id
                  AND p.workload = d.workload AND p.model = d.model;

-- One row per (sweep, profile, workload). comparison: how the models were compared
-- with the fastest (paired, unpaired, or mixed when some pairs shared blocks and some
-- did not); min_blocks: the fewest blocks of a paired comparison; next_slowdown: the
-- ratio of the fastest model significantly slower than the best (its paired median
-- ratio, or the ratio of pooled medians when unpaired).
CREATE OR REPLACE VIEW decisions AS
WITH guide AS (
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
       arg_min(ratio, median_s) FILTER (WHERE NOT tied) AS next_slowdown,
       min(pair_level) FILTER (WHERE model <> best_model) AS min_pair_level,
       CASE WHEN bool_and(method = 'paired') FILTER (WHERE method IS NOT NULL) THEN 'paired'
            WHEN bool_and(method = 'unpaired') FILTER (WHERE method IS NOT NULL)
                 THEN 'unpaired'
            WHEN bool_or(method IS NOT NULL) THEN 'mixed' END AS comparison,
       min(n_blocks) FILTER (WHERE method = 'paired') AS min_blocks,
       count(*) AS n_models,
       any_value(g.guide_choice) AS guide_choice,
       any_value(g.guide_claim) AS guide_claim
FROM decision_pairs
LEFT JOIN guide g USING (workload)
GROUP BY sweep_id, profile_id, workload;

------------------------------------------------------------------ measured thresholds

-- The guide's fixed numbers (run CPU tasks under 100 ms sequentially, avoid processes for
-- large data, no more workers than cores, 10-50 ms to spawn a process, asyncio above 100
-- connections), measured per (sweep, profile) from the dimension views
-- (analysis/dimensions.sql). One row per threshold and model (and variant):
--   cpu_crossover        (crossover)     value: task duration (s) from which the model beats
--                                        sequential; low: the largest duration where it did not
--   transfer_lose_from   (transfer_cost) value: payload (bytes) from which the model loses to
--                                        threads, per transport (variant); low: the largest
--                                        payload where it did not
--   scaling_knee         (scaling)       value: the fewest workers reaching 95% of the best
--                                        speedup; speedup: the best speedup (see below)
--   spawn_per_worker     (spawn_cost)    value: median pool start-up per worker (s) over the
--                                        worker counts, per start method (variant); low/high:
--                                        the smallest and largest
--   asyncio_over_threads (io_latency)    value: the concurrency from which asyncio is
--                                        significantly faster than threads (non-overlapping
--                                        95% median intervals) at every larger one
-- status: found; never (not up to tested_max); below_range (already at tested_min);
-- inconclusive; not_run (the cells did not run: speedups missing). Hosts of one profile
-- pool: the threshold holds on every host (value = the largest host's, low = the
-- largest low). No row: not measured in these sweeps.
-- No threshold is drawn from an inconclusive cell (one whose interval cannot tell a
-- gain from none): the value of cpu_crossover, transfer_lose_from and
-- asyncio_over_threads is a point where the difference is significant, at it and at
-- every larger point, by construction; their `low` is the largest point where it was
-- not shown (inconclusive or the other way), i.e. the threshold's uncertainty, not a
-- claim about that point. scaling_knee is read from point estimates (the fewest
-- workers reaching 95% of the best speedup), so it is drawn only when the best
-- speedup's interval lies above 1 on every host: else status inconclusive (the
-- interval contains 1) or never (it lies below 1: more workers only cost), and value
-- NULL. spawn_per_worker compares nothing.
CREATE OR REPLACE VIEW thresholds AS
WITH cx AS (
    SELECT sweep_id, profile_id, 'cpu_crossover' AS threshold, workload, model,
           NULL::VARCHAR AS variant,
           CASE WHEN bool_or(points = 0) THEN NULL ELSE max(crossover_task_s) END AS value,
           max(crossover_low_s) AS low, max(crossover_task_s) AS high, 's' AS unit,
           CASE WHEN bool_and(crossover_task_s IS NULL AND crossover_low_s IS NULL)
                THEN 'not_run'
                WHEN bool_or(crossover_task_s IS NULL) THEN 'never'
                WHEN bool_and(crossover_low_s IS NULL) THEN 'below_range'
                ELSE 'found' END AS status,
           min(min_task_s) AS tested_min, max(max_task_s) AS tested_max,
           max(points) AS points,
           arg_max(speedup_at_crossover, crossover_task_s) AS speedup,
           arg_max(speedup_ci_low_at_crossover, crossover_task_s) AS speedup_ci_low,
           arg_max(speedup_ci_high_at_crossover, crossover_task_s) AS speedup_ci_high,
           count(DISTINCT env_id) AS n_envs
    FROM crossover
    GROUP BY sweep_id, profile_id, workload, model
), tc_env AS (
    SELECT sweep_id, env_id, profile_id, workload, model, transport,
           any_value(lose_from_bytes) AS lose_from,
           max(payload_bytes) FILTER (WHERE payload_bytes < lose_from_bytes) AS low,
           min(payload_bytes) AS tested_min, max(payload_bytes) AS tested_max,
           count(*) AS points,
           bool_and(loses_to_threads IS NULL) AS not_run
    FROM transfer_cost
    WHERE model NOT IN ('threads', 'sequential')
    GROUP BY sweep_id, env_id, profile_id, workload, model, transport
), tc AS (
    SELECT sweep_id, profile_id, 'transfer_lose_from' AS threshold, workload, model,
           transport AS variant,
           CASE WHEN bool_or(lose_from IS NULL) THEN NULL ELSE max(lose_from) END AS value,
           max(low) AS low, max(lose_from) AS high, 'bytes' AS unit,
           CASE WHEN bool_and(not_run) THEN 'not_run'
                WHEN bool_or(lose_from IS NULL) THEN 'never'
                WHEN bool_and(low IS NULL) THEN 'below_range'
                ELSE 'found' END AS status,
           min(tested_min) AS tested_min, max(tested_max) AS tested_max,
           max(points) AS points, NULL::DOUBLE AS speedup, NULL::DOUBLE AS speedup_ci_low,
           NULL::DOUBLE AS speedup_ci_high, count(DISTINCT env_id) AS n_envs
    FROM tc_env
    GROUP BY sweep_id, profile_id, workload, model, transport
), kn AS (
    -- the knee is drawn only where the best speedup is conclusive (its interval above 1)
    SELECT sweep_id, profile_id, 'scaling_knee' AS threshold, workload, model,
           NULL::VARCHAR AS variant,
           CASE WHEN bool_and(speedup_ci_low > 1) FILTER (WHERE speedup = best_speedup)
                THEN max(knee_workers) END::DOUBLE AS value,
           NULL::DOUBLE AS low, NULL::DOUBLE AS high, 'workers' AS unit,
           CASE WHEN max(knee_workers) IS NULL THEN 'not_run'
                WHEN bool_or(speedup_ci_high < 1) FILTER (WHERE speedup = best_speedup)
                     THEN 'never'
                WHEN NOT bool_and(speedup_ci_low > 1) FILTER (WHERE speedup = best_speedup)
                     THEN 'inconclusive'
                ELSE 'found' END AS status,
           min(workers)::DOUBLE AS tested_min, max(workers)::DOUBLE AS tested_max,
           count(DISTINCT workers) AS points,
           min(best_speedup) AS speedup,
           min(speedup_ci_low) FILTER (WHERE speedup = best_speedup) AS speedup_ci_low,
           max(speedup_ci_high) FILTER (WHERE speedup = best_speedup) AS speedup_ci_high,
           count(DISTINCT env_id) AS n_envs
    FROM scaling
    GROUP BY sweep_id, profile_id, workload, model
), sp AS (
    SELECT sweep_id, profile_id, 'spawn_per_worker' AS threshold, workload, model,
           start_method AS variant, median(per_worker_s) AS value,
           min(per_worker_s) AS low, max(per_worker_s) AS high, 's' AS unit,
           CASE WHEN count(per_worker_s) = 0 THEN 'not_run' ELSE 'found' END AS status,
           min(workers)::DOUBLE AS tested_min, max(workers)::DOUBLE AS tested_max,
           count(DISTINCT workers) AS points, NULL::DOUBLE AS speedup,
           NULL::DOUBLE AS speedup_ci_low, NULL::DOUBLE AS speedup_ci_high,
           count(DISTINCT env_id) AS n_envs
    FROM spawn_cost
    GROUP BY sweep_id, profile_id, workload, model, start_method
), io_pair AS (
    SELECT a.sweep_id, a.env_id, a.profile_id, a.workload, a.concurrency,
           a.ci_high_s < t.ci_low_s AS faster
    FROM io_latency a
    JOIN io_latency t ON t.sweep_id = a.sweep_id AND t.env_id = a.env_id
     AND t.workload = a.workload AND t.dimension = a.dimension
     AND t.concurrency = a.concurrency AND t.model = 'threads'
    WHERE a.dimension = 'concurrency' AND a.model = 'asyncio'
), io_env AS (
    SELECT *, bool_and(coalesce(faster, false)) OVER (
               PARTITION BY sweep_id, env_id, workload ORDER BY concurrency DESC
               ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS faster_from_here
    FROM io_pair
), io_e AS (
    SELECT sweep_id, env_id, profile_id, workload,
           min(concurrency) FILTER (WHERE faster_from_here) AS over_from,
           max(concurrency) FILTER (WHERE NOT faster_from_here) AS low,
           min(concurrency) AS tested_min, max(concurrency) AS tested_max, count(*) AS points,
           bool_and(faster IS NULL) AS not_run
    FROM io_env GROUP BY sweep_id, env_id, profile_id, workload
), io AS (
    SELECT sweep_id, profile_id, 'asyncio_over_threads' AS threshold, workload,
           'asyncio' AS model, 'threads' AS variant,
           CASE WHEN bool_or(over_from IS NULL) THEN NULL ELSE max(over_from) END::DOUBLE
               AS value,
           max(low)::DOUBLE AS low, max(over_from)::DOUBLE AS high, 'concurrency' AS unit,
           CASE WHEN bool_and(not_run) THEN 'not_run'
                WHEN bool_or(over_from IS NULL) THEN 'never'
                WHEN bool_and(low IS NULL) THEN 'below_range'
                ELSE 'found' END AS status,
           min(tested_min)::DOUBLE AS tested_min, max(tested_max)::DOUBLE AS tested_max,
           max(points) AS points, NULL::DOUBLE AS speedup, NULL::DOUBLE AS speedup_ci_low,
           NULL::DOUBLE AS speedup_ci_high, count(DISTINCT env_id) AS n_envs
    FROM io_e GROUP BY sweep_id, profile_id, workload
)
SELECT * FROM cx
UNION ALL BY NAME SELECT * FROM tc
UNION ALL BY NAME SELECT * FROM kn
UNION ALL BY NAME SELECT * FROM sp
UNION ALL BY NAME SELECT * FROM io;
