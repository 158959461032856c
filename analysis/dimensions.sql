-- harness dimension views (issue 4): the guide's decision rules, measured per host.
--
-- Loaded after views.sql (harness/warehouse.py: VIEW_FILES); by hand in the DuckDB shell:
--     .read analysis/views.sql
--     .read analysis/dimensions.sql
--
-- Dimension cells are the non-headline cells planned from the [dimensions] tables of
-- workloads/*.toml: params->>'dimension' names the dimension, the varied value is in
-- params (task_s, payload_bytes, chunksize, start_method, pinning, memory, gil) or in
-- workers. Every point has a sequential cell at the same params (its baseline).
-- Speedups are built as in matrix: paired (the median of the per-block ratios and its
-- order-statistic interval, paired_cells) where the cell ran in blocks with its point's
-- sequential cell, else unpaired (two 97.5% median intervals, Bonferroni).

------------------------------------------------------------------ significance

-- Standard normal CDF (Abramowitz & Stegun 7.1.26 for erf, |error| < 1.5e-7).
CREATE OR REPLACE MACRO normal_cdf(z) AS
    CASE WHEN z IS NULL THEN NULL ELSE
    0.5 * (1 + sign(z) * (1 - (
        0.254829592 * (1 / (1 + 0.3275911 * abs(z) / sqrt(2)))
      - 0.284496736 * pow(1 / (1 + 0.3275911 * abs(z) / sqrt(2)), 2)
      + 1.421413741 * pow(1 / (1 + 0.3275911 * abs(z) / sqrt(2)), 3)
      - 1.453152027 * pow(1 / (1 + 0.3275911 * abs(z) / sqrt(2)), 4)
      + 1.061405429 * pow(1 / (1 + 0.3275911 * abs(z) / sqrt(2)), 5)
    ) * exp(-(z * z) / 2))) END;

-- Mann-Whitney U of sample lists xs and ys: U counts the pairs with x > y (ties 1/2).
CREATE OR REPLACE MACRO mann_whitney_u(xs, ys) AS
    list_sum([list_sum([CASE WHEN x > y THEN 1.0 WHEN x = y THEN 0.5 ELSE 0.0 END
                        FOR y IN ys]) FOR x IN xs])::DOUBLE;

-- Sum of (t^3 - t) over the groups of tied values of the pooled samples.
CREATE OR REPLACE MACRO mann_whitney_ties(xs, ys) AS
    list_sum([pow(len(list_filter(list_concat(xs, ys), lambda a: a = v)), 3)
              - len(list_filter(list_concat(xs, ys), lambda a: a = v))
              FOR v IN list_distinct(list_concat(xs, ys))])::DOUBLE;

-- z of the normal approximation with tie correction and continuity correction (0.5).
CREATE OR REPLACE MACRO mann_whitney_z(xs, ys) AS
    CASE WHEN len(xs) > 0 AND len(ys) > 0 AND
              len(xs) * len(ys) / 12.0 * ((len(xs) + len(ys) + 1)
                  - mann_whitney_ties(xs, ys) / ((len(xs) + len(ys)) * (len(xs) + len(ys) - 1)))
              > 0
         THEN sign(mann_whitney_u(xs, ys) - len(xs) * len(ys) / 2.0)
              * greatest(0.0, abs(mann_whitney_u(xs, ys) - len(xs) * len(ys) / 2.0) - 0.5)
              / sqrt(len(xs) * len(ys) / 12.0 * ((len(xs) + len(ys) + 1)
                  - mann_whitney_ties(xs, ys) / ((len(xs) + len(ys)) * (len(xs) + len(ys) - 1))))
    END;

-- Two-sided p-value of the Mann-Whitney U test (normal approximation, as above).
-- (1 when every value is tied: no evidence of a difference; NULL without samples.)
CREATE OR REPLACE MACRO mann_whitney_p(xs, ys) AS
    CASE WHEN coalesce(len(xs), 0) = 0 OR coalesce(len(ys), 0) = 0 THEN NULL
         WHEN mann_whitney_z(xs, ys) IS NULL THEN 1.0
         ELSE least(1.0, 2 * (1 - normal_cdf(abs(mann_whitney_z(xs, ys))))) END;

CREATE OR REPLACE MACRO significance_method() AS
    'Mann-Whitney U, two-sided, normal approximation with tie and continuity corrections, alpha 0.05';

-- The timed good wall times of every cell, as a sorted list (for the tests above).
CREATE OR REPLACE VIEW cell_samples AS
SELECT sweep_id, env_id, cell_id, any_value(profile_id) AS profile_id,
       any_value(pool_key) AS cell_key,
       list_sort(list(wall_s) FILTER (WHERE timed AND good)) AS xs
FROM samples
GROUP BY sweep_id, env_id, cell_id;

-- The same as compare_cells (same cell_key in two pooled groups: two sweeps, two builds,
-- two machines), with the Mann-Whitney test beside the interval rule:
-- mw_p (two-sided p), significant_mw (mw_p < 0.05) and method.
CREATE OR REPLACE VIEW compare_significance AS
WITH pooled AS (
    SELECT sweep_id, profile_id, cell_key, list_sort(flatten(list(xs))) AS xs
    FROM cell_samples GROUP BY sweep_id, profile_id, cell_key
)
SELECT c.*, mann_whitney_u(a.xs, b.xs) AS mw_u, mann_whitney_z(a.xs, b.xs) AS mw_z,
       mann_whitney_p(a.xs, b.xs) AS mw_p,
       mann_whitney_p(a.xs, b.xs) < 0.05 AS significant_mw,
       significance_method() AS method
FROM compare_cells c
JOIN pooled a ON a.sweep_id = c.a_sweep_id AND a.profile_id = c.a_profile_id
             AND a.cell_key = c.cell_key
JOIN pooled b ON b.sweep_id = c.b_sweep_id AND b.profile_id = c.b_profile_id
             AND b.cell_key = c.cell_key;

------------------------------------------------------------------ per-cell extras

-- Medians over the timed good repeats of what the agent put in extra.
CREATE OR REPLACE VIEW cell_extras AS
SELECT sweep_id, env_id, cell_id,
       quantile_cont(TRY_CAST(extra->>'startup_s' AS DOUBLE), 0.5)
           FILTER (WHERE timed AND good) AS startup_s,
       min(TRY_CAST(extra->>'startup_s' AS DOUBLE)) FILTER (WHERE timed AND good)
           AS startup_min_s,
       max(TRY_CAST(extra->>'startup_s' AS DOUBLE)) FILTER (WHERE timed AND good)
           AS startup_max_s,
       quantile_cont(TRY_CAST(extra->>'tasks_s' AS DOUBLE), 0.5)
           FILTER (WHERE timed AND good) AS tasks_s,
       quantile_cont(TRY_CAST(extra->>'latency_p50_s' AS DOUBLE), 0.5)
           FILTER (WHERE timed AND good) AS latency_p50_s,
       quantile_cont(TRY_CAST(extra->>'latency_p95_s' AS DOUBLE), 0.5)
           FILTER (WHERE timed AND good) AS latency_p95_s,
       quantile_cont(TRY_CAST(extra->>'latency_p99_s' AS DOUBLE), 0.5)
           FILTER (WHERE timed AND good) AS latency_p99_s,
       max(TRY_CAST(extra->>'worker_peak_rss_bytes' AS BIGINT)) FILTER (WHERE timed AND good)
           AS worker_peak_rss_bytes,
       max(TRY_CAST(extra->>'procs_peak' AS INTEGER)) FILTER (WHERE timed AND good)
           AS procs_peak,
       bool_and(TRY_CAST(extra->>'gil_enabled' AS BOOLEAN)) AS gil_enabled_run
FROM samples
GROUP BY sweep_id, env_id, cell_id;

-- Every dimension cell with its environment, its dimension values as typed columns,
-- its extras, and the sequential cell of the same point (same env, workload, dimension
-- and params other than the model's own: start_method is not compared) as baseline.
-- speedup and its interval: paired (speedup_method 'paired', n_blocks block ratios) when
-- the cell's block group has exactly that sequential cell as its baseline (each point is
-- one group with its sequential cell; dimension 'workers' is one group of every worker
-- count with one sequential), else unpaired (speedup_unpaired*, kept on every row).
-- vs_seq_mw_p stays the unpaired Mann-Whitney test of the two cells' samples.
CREATE OR REPLACE VIEW dimension_cells AS
WITH d AS (
    SELECT c.*, x.* EXCLUDE (sweep_id, env_id, cell_id),
           e.profile_id, e.host, e.python, e.usable_cpus, e.numa_nodes, e.free_threaded,
           e.python_version,
           c.params->>'dimension' AS dimension,
           TRY_CAST(c.params->>'task_s' AS DOUBLE) AS task_s,
           TRY_CAST(c.params->>'tasks' AS INTEGER) AS tasks,
           TRY_CAST(c.params->>'payload_bytes' AS BIGINT) AS payload_bytes,
           coalesce(TRY_CAST(c.params->>'shm' AS BOOLEAN), false) AS shm,
           TRY_CAST(c.params->>'chunksize' AS INTEGER) AS chunksize,
           c.params->>'start_method' AS start_method,
           coalesce(c.params->>'pinning', 'none') AS pinning,
           c.params->>'memory' AS memory,
           TRY_CAST(c.params->>'gil' AS INTEGER) AS gil,
           concat_ws('|', c.params->>'task_s', c.params->>'tasks', c.params->>'payload_bytes',
                     c.params->>'shm', c.params->>'chunksize', c.params->>'pinning',
                     c.params->>'memory', c.params->>'gil',
                     CASE WHEN c.params->>'dimension' LIKE 'spawn_%'
                          THEN c.params->>'dimension' END) AS point
    FROM cells c
    JOIN cell_extras x USING (sweep_id, env_id, cell_id)
    LEFT JOIN environments e USING (sweep_id, env_id)
    WHERE c.params->>'dimension' IS NOT NULL
), s AS (
    SELECT d.sweep_id, d.env_id, d.workload, d.dimension, d.point, d.cell_id, d.n,
           d.median_s, d.ci975_low_s, d.ci975_high_s, d.ci975_level, d.peak_rss_bytes,
           cs.xs
    FROM d JOIN cell_samples cs USING (sweep_id, env_id, cell_id)
    WHERE d.model = 'sequential'
    QUALIFY row_number() OVER (PARTITION BY d.sweep_id, d.env_id, d.workload, d.dimension,
                                            d.point ORDER BY d.cell_id) = 1
), u AS (
    SELECT d.*, cs.xs,
           s.cell_id AS seq_cell_id, s.n AS seq_n, s.median_s AS seq_median_s,
           s.peak_rss_bytes AS seq_peak_rss_bytes,
           speedup_ratio(d.cell_id = s.cell_id, d.n, s.n, s.median_s, d.median_s)
               AS speedup_unpaired,
           speedup_ratio(d.cell_id = s.cell_id, d.n, s.n, s.ci975_low_s, d.ci975_high_s)
               AS speedup_unpaired_ci_low,
           speedup_ratio(d.cell_id = s.cell_id, d.n, s.n, s.ci975_high_s, d.ci975_low_s)
               AS speedup_unpaired_ci_high,
           speedup_level(d.cell_id = s.cell_id, d.n, s.n, d.ci975_level, s.ci975_level)
               AS speedup_unpaired_ci_level,
           CASE WHEN d.n = 0 OR s.n = 0 OR d.cell_id = s.cell_id THEN NULL
                ELSE mann_whitney_p(cs.xs, s.xs) END AS vs_seq_mw_p,
           coalesce(p.n_blocks > 0 AND p.seq_cell_id = s.cell_id, false) AS paired,
           p.n_blocks AS p_n_blocks, p.speedup AS p_speedup, p.speedup_ci_low AS p_ci_low,
           p.speedup_ci_high AS p_ci_high, p.speedup_ci_level AS p_ci_level
    FROM d
    JOIN cell_samples cs USING (sweep_id, env_id, cell_id)
    LEFT JOIN s ON s.sweep_id = d.sweep_id AND s.env_id = d.env_id AND s.workload = d.workload
               AND s.dimension = d.dimension AND s.point = d.point
    LEFT JOIN paired_cells p ON p.sweep_id = d.sweep_id AND p.env_id = d.env_id
                            AND p.cell_id = d.cell_id
)
SELECT * EXCLUDE (speedup_unpaired, speedup_unpaired_ci_low, speedup_unpaired_ci_high,
                  speedup_unpaired_ci_level, vs_seq_mw_p, paired, p_n_blocks, p_speedup,
                  p_ci_low, p_ci_high, p_ci_level),
       CASE WHEN paired THEN p_speedup ELSE speedup_unpaired END AS speedup,
       CASE WHEN paired THEN p_ci_low ELSE speedup_unpaired_ci_low END AS speedup_ci_low,
       CASE WHEN paired THEN p_ci_high ELSE speedup_unpaired_ci_high END AS speedup_ci_high,
       CASE WHEN paired THEN p_ci_level ELSE speedup_unpaired_ci_level END AS speedup_ci_level,
       vs_seq_mw_p,
       -- added with interleaved blocks (schema version 2)
       CASE WHEN paired THEN 'paired'
            WHEN speedup_unpaired IS NOT NULL THEN 'unpaired' END AS speedup_method,
       CASE WHEN paired THEN p_n_blocks ELSE 0 END AS n_blocks,
       speedup_unpaired, speedup_unpaired_ci_low, speedup_unpaired_ci_high,
       speedup_unpaired_ci_level
FROM u;

------------------------------------------------------------------ scaling

-- Speedup and parallel efficiency by workers (dimension 'workers'), per model and
-- environment (profile_id for pooling by profile). ideal_speedup = min(workers,
-- usable_cpus) (the ideal line); efficiency = speedup / workers; oversubscribed when
-- workers > usable_cpus; knee_workers: the fewest workers reaching 95% of the model's
-- best speedup (more workers than that stop helping).
CREATE OR REPLACE VIEW scaling AS
SELECT sweep_id, env_id, profile_id, host, python, workload, model, workers, usable_cpus,
       status, reason, n, median_s, ci_low_s, ci_high_s, seq_median_s,
       speedup, speedup_ci_low, speedup_ci_high, speedup_ci_level,
       least(workers, usable_cpus)::DOUBLE AS ideal_speedup,
       speedup / workers AS efficiency,
       workers > usable_cpus AS oversubscribed,
       min(workers) FILTER (WHERE speedup >= 0.95 * best) OVER w AS knee_workers,
       best AS best_speedup
FROM (SELECT *, max(speedup) OVER (PARTITION BY sweep_id, env_id, workload, model) AS best
      FROM dimension_cells WHERE dimension = 'workers' AND model <> 'sequential')
WINDOW w AS (PARTITION BY sweep_id, env_id, workload, model);

------------------------------------------------------------------ crossover

-- Each model against sequential at each task duration (dimension 'task_duration'):
-- beats when the whole speedup interval is above 1.
CREATE OR REPLACE VIEW crossover_points AS
SELECT sweep_id, env_id, profile_id, host, python, workload, model, workers, task_s, tasks,
       status, reason, n, median_s, seq_median_s, speedup, speedup_ci_low, speedup_ci_high,
       speedup_ci_level, vs_seq_mw_p, speedup_ci_low > 1 AS beats
FROM dimension_cells
WHERE dimension = 'task_duration' AND model <> 'sequential';

-- The smallest task duration from which each model beats sequential at every larger
-- point (crossover_task_s), with its interval: the crossover lies in
-- (crossover_low_s, crossover_task_s], crossover_low_s being the largest measured
-- duration where it did not (NULL: it beat sequential at every point). crossover_task_s
-- NULL: it never did (up to max_task_s).
CREATE OR REPLACE VIEW crossover AS
WITH p AS (
    SELECT *, bool_and(coalesce(beats, false)) OVER (
               PARTITION BY sweep_id, env_id, workload, model ORDER BY task_s DESC
               ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS beats_from_here
    FROM crossover_points
)
SELECT sweep_id, env_id, any_value(profile_id) AS profile_id, any_value(host) AS host,
       any_value(python) AS python, workload, model, any_value(workers) AS workers,
       any_value(tasks) AS tasks,
       min(task_s) FILTER (WHERE beats_from_here) AS crossover_task_s,
       max(task_s) FILTER (WHERE NOT beats_from_here) AS crossover_low_s,
       arg_min(speedup, task_s) FILTER (WHERE beats_from_here) AS speedup_at_crossover,
       arg_min(speedup_ci_low, task_s) FILTER (WHERE beats_from_here) AS speedup_ci_low_at_crossover,
       arg_min(speedup_ci_high, task_s) FILTER (WHERE beats_from_here) AS speedup_ci_high_at_crossover,
       min(task_s) AS min_task_s, max(task_s) AS max_task_s, count(*) AS points
FROM p
GROUP BY sweep_id, env_id, workload, model;

------------------------------------------------------------------ transfer_cost

-- Time per task by payload size and model (dimensions 'payload' and 'payload_shm'):
-- per_task_s = median_s / tasks; vs_threads = this model's median over threads' at the
-- same payload and transport (above 1: slower than threads); loses_to_threads when
-- significantly slower (Mann-Whitney p < 0.05, or the two 95% median intervals do not
-- overlap: with 3 repeats each no U test can reach p < 0.05); lose_from_bytes: the smallest payload
-- from which this model loses to threads at every larger payload.
CREATE OR REPLACE VIEW transfer_cost AS
WITH t AS (
    SELECT d.*, th.median_s AS threads_median_s,
           d.median_s / nullif(th.median_s, 0) AS vs_threads,
           CASE WHEN d.model IN ('threads', 'sequential') THEN NULL
                ELSE d.median_s > th.median_s AND (mann_whitney_p(d.xs, th.xs) < 0.05
                                                   OR d.ci_low_s > th.ci_high_s) END
               AS loses_to_threads
    FROM dimension_cells d
    LEFT JOIN dimension_cells th
      ON th.sweep_id = d.sweep_id AND th.env_id = d.env_id AND th.workload = d.workload
     AND th.dimension = d.dimension AND th.point = d.point AND th.model = 'threads'
    WHERE d.dimension IN ('payload', 'payload_shm')
), l AS (
    SELECT *, bool_and(coalesce(loses_to_threads, false)) OVER (
               PARTITION BY sweep_id, env_id, dimension, model ORDER BY payload_bytes DESC
               ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS loses_from_here
    FROM t
)
SELECT sweep_id, env_id, profile_id, host, python, workload, model, workers,
       CASE WHEN shm THEN 'shared_memory' ELSE 'pickle' END AS transport,
       payload_bytes, tasks, task_s, status, reason, n, median_s, ci_low_s, ci_high_s,
       median_s / nullif(tasks, 0) AS per_task_s, seq_median_s, speedup,
       threads_median_s, vs_threads, loses_to_threads,
       CASE WHEN model NOT IN ('threads', 'sequential')
            THEN min(payload_bytes) FILTER (WHERE loses_from_here)
           OVER (PARTITION BY sweep_id, env_id, dimension, model) END AS lose_from_bytes,
       peak_rss_bytes
FROM l;

------------------------------------------------------------------ spawn_cost

-- Pool start-up (create the pool, every worker answers a no-op), measured apart from the
-- tasks (extra.startup_s), by start method and workers (dimensions spawn_*):
-- per_worker_s = startup_s / workers (the guide: 10-50 ms per process).
CREATE OR REPLACE VIEW spawn_cost AS
SELECT sweep_id, env_id, profile_id, host, python, workload, model, start_method, workers,
       status, reason, n, startup_s, startup_min_s, startup_max_s,
       startup_s / workers AS per_worker_s, tasks_s, median_s
FROM dimension_cells
WHERE dimension LIKE 'spawn_%' AND model <> 'sequential';

------------------------------------------------------------------ worker_memory

-- Peak RSS per worker process and of the whole tree, for every cell that ran a process
-- pool: tree_peak_rss_bytes (agent + workers), worker_peak_rss_bytes (the largest single
-- worker), workers_x_worker_bytes = workers * that (the guide's 'memory per worker x
-- workers'), seq_peak_rss_bytes (the same point run sequentially, the agent alone).
CREATE OR REPLACE VIEW worker_memory AS
SELECT sweep_id, env_id, profile_id, host, python, workload, dimension, point, model,
       workers, procs_peak, status, peak_rss_bytes AS tree_peak_rss_bytes,
       worker_peak_rss_bytes, workers * worker_peak_rss_bytes AS workers_x_worker_bytes,
       seq_peak_rss_bytes,
       (peak_rss_bytes - seq_peak_rss_bytes) / nullif(workers, 0) AS extra_per_worker_bytes
FROM dimension_cells
WHERE model IN ('processes', 'mp_pool') AND n > 0;

------------------------------------------------------------------ numa

-- Pinning (none, compact, spread) and memory placement (numactl --membind local or
-- remote) on the memory-bound workload. Cells that cannot run here are rows with
-- status not_applicable and the reason ('1 NUMA node', 'numactl is not installed').
-- vs_unpinned = median over the 'none' cell of the same model (above 1: slower);
-- remote_penalty = remote median / local median - 1 (the guide: 30-50%).
CREATE OR REPLACE VIEW numa AS
WITH n AS (
    SELECT * FROM dimension_cells WHERE dimension IN ('pinning', 'placement')
)
SELECT n.sweep_id, n.env_id, n.profile_id, n.host, n.python, n.numa_nodes, n.workload,
       n.dimension, n.model, n.workers, n.pinning, n.memory, n.status, n.reason, n.n,
       n.median_s, n.ci_low_s, n.ci_high_s,
       n.median_s / nullif(u.median_s, 0) AS vs_unpinned,
       CASE WHEN n.memory = 'remote' THEN n.median_s / nullif(l.median_s, 0) - 1 END
           AS remote_penalty
FROM n
LEFT JOIN n u ON u.sweep_id = n.sweep_id AND u.env_id = n.env_id AND u.model = n.model
             AND u.dimension = 'pinning' AND u.pinning = 'none'
LEFT JOIN n l ON l.sweep_id = n.sweep_id AND l.env_id = n.env_id AND l.model = n.model
             AND l.dimension = 'placement' AND l.memory = 'local';

------------------------------------------------------------------ gil_effect

-- The free-threaded build with PYTHON_GIL=0 and =1 (dimension 'gil'; not_applicable on a
-- standard build, with the reason), against each other and against the standard build's
-- headline cell of the same workload, model, workers, task_s and tasks in the same sweep
-- and host: vs_gil_on = median(GIL off) / median(GIL on) (below 1: disabling the GIL
-- helps); vs_standard_build = this median / the standard build's (above 1: the
-- free-threaded build is slower). gil_enabled_run is what the interpreter reported.
CREATE OR REPLACE VIEW gil_effect AS
WITH g AS (SELECT * FROM dimension_cells WHERE dimension = 'gil'),
std AS (
    SELECT c.sweep_id, e.host, c.workload, c.model, c.workers,
           c.params->>'task_s' AS task_s, c.params->>'tasks' AS tasks,
           c.median_s, e.python AS std_python
    FROM cells c JOIN environments e USING (sweep_id, env_id)
    WHERE c.headline AND NOT coalesce(e.free_threaded, false) AND c.n > 0
)
SELECT g.sweep_id, g.env_id, g.profile_id, g.host, g.python, g.python_version,
       g.free_threaded, g.workload, g.model, g.workers, g.gil, g.gil_enabled_run, g.status,
       g.reason, g.n, g.median_s, g.ci_low_s, g.ci_high_s, g.speedup, g.speedup_ci_low,
       g.speedup_ci_high,
       g.median_s / nullif(on_.median_s, 0) AS vs_gil_on,
       std.std_python, std.median_s AS std_median_s,
       g.median_s / nullif(std.median_s, 0) AS vs_standard_build
FROM g
LEFT JOIN g on_ ON on_.sweep_id = g.sweep_id AND on_.env_id = g.env_id
               AND on_.model = g.model AND on_.workers = g.workers AND on_.gil = 1
               AND g.gil = 0
LEFT JOIN std ON std.sweep_id = g.sweep_id AND std.host = g.host
             AND std.workload = g.workload AND std.model = g.model
             AND std.workers = g.workers AND std.task_s = g.params->>'task_s'
             AND std.tasks = g.params->>'tasks'
QUALIFY row_number() OVER (PARTITION BY g.sweep_id, g.env_id, g.cell_id
                           ORDER BY std.std_python) = 1;

------------------------------------------------------------------ io_latency

-- Per-request latency (median over repeats of each repeat's p50/p95/p99) and throughput
-- (requests per second = tasks / median_s) by model and concurrency (workers), for the
-- network workloads: their headline cells and the 'concurrency' dimension.
CREATE OR REPLACE VIEW io_latency AS
SELECT c.sweep_id, c.env_id, e.profile_id, e.host, e.python, c.workload, c.model,
       c.workers AS concurrency, TRY_CAST(c.params->>'tasks' AS INTEGER) AS tasks,
       TRY_CAST(c.params->>'delay_s' AS DOUBLE) AS delay_s, c.headline,
       c.params->>'dimension' AS dimension, c.status, c.reason, c.n, c.median_s,
       c.ci_low_s, c.ci_high_s,
       x.latency_p50_s, x.latency_p95_s, x.latency_p99_s,
       TRY_CAST(c.params->>'tasks' AS INTEGER) / nullif(c.median_s, 0) AS throughput_rps
FROM cells c
JOIN cell_extras x USING (sweep_id, env_id, cell_id)
LEFT JOIN environments e USING (sweep_id, env_id)
WHERE c.workload LIKE 'net_%';

------------------------------------------------------------------ overheads

-- The agent's clocks and the cost of one empty task through each model, per
-- environment: timer_resolution_s (time.get_clock_info('perf_counter')), per_task_s =
-- median_s / tasks of the 'overhead' dimension of workload empty (pool start-up
-- included, as a user pays it), tasks_per_task_s = the same without start-up.
CREATE OR REPLACE VIEW overheads AS
SELECT d.sweep_id, d.env_id, d.profile_id, d.host, d.python,
       TRY_CAST(e.probe->>'timer_resolution_s' AS DOUBLE) AS timer_resolution_s,
       d.model, d.workers, d.tasks, d.status, d.reason, d.n, d.median_s,
       d.median_s / nullif(d.tasks, 0) AS per_task_s,
       d.tasks_s / nullif(d.tasks, 0) AS tasks_per_task_s,
       d.startup_s
FROM dimension_cells d
LEFT JOIN environments e USING (sweep_id, env_id)
WHERE d.workload = 'empty' AND d.dimension = 'overhead';
