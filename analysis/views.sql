-- harness warehouse views (schema versions 1 and 2: version 2 adds block, block_pos,
-- block_group and probe_s to measurements and attempts; version 1 files read them NULL).
--
-- Run by hand from the project root, in the DuckDB shell:
--
--     duckdb                              -- or: duckdb results/scratch.duckdb
--     .read analysis/views.sql
--     SELECT * FROM matrix WHERE sweep_id = (SELECT max(sweep_id) FROM sweeps);
--
-- The paths 'results/<table>/...' are relative to the current directory. For another
-- results dir, rewrite them:  sed 's#'"'"'results/#'"'"'/data/results/#' analysis/views.sql
-- harness does the same rewrite (harness/warehouse.py: view_sql) to the absolute root,
-- and replaces the reader of a table that has no file yet by a typed empty relation
-- (by hand, a table with no file yet fails with "No files found").
-- `harness sql`, `harness matrix` etc. create these views in an in-memory database;
-- results/warehouse.duckdb is a copy of them for the DuckDB shell (delete it freely).
--
-- sweep_id lives only in the directory names (hive partitioning); hive_types keeps it
-- a VARCHAR even when an id looks like a number or a date.

------------------------------------------------------------------ the files as tables

CREATE OR REPLACE VIEW sweeps AS
SELECT sweep_id, * EXCLUDE (sweep_id) REPLACE (TRY_CAST(plan AS JSON) AS plan)
FROM read_parquet('results/sweeps/sweep_id=*/*.parquet',
                  hive_partitioning = true, union_by_name = true,
                  hive_types = {'sweep_id': VARCHAR});

CREATE OR REPLACE VIEW environments AS
SELECT sweep_id, * EXCLUDE (sweep_id)
    REPLACE (TRY_CAST(numa_cpus AS JSON) AS numa_cpus, TRY_CAST(probe AS JSON) AS probe)
FROM read_parquet('results/environments/sweep_id=*/*.parquet',
                  hive_partitioning = true, union_by_name = true,
                  hive_types = {'sweep_id': VARCHAR});

-- Attempts at a cell that the agent never finished (host lost, agent killed,
-- interrupted): one file per attempt, numbered 1, 2, ... They are not results:
-- --resume runs such a cell again and its cell file then supersedes them.
CREATE OR REPLACE VIEW attempts AS
SELECT sweep_id, * EXCLUDE (sweep_id)
    REPLACE (TRY_CAST(params AS JSON) AS params, TRY_CAST(extra AS JSON) AS extra)
FROM read_parquet('results/attempts/sweep_id=*/*.parquet',
                  hive_partitioning = true, union_by_name = true,
                  hive_types = {'sweep_id': VARCHAR});

-- The rows of every finished cell, plus, for a cell that has no finished file (yet),
-- the rows of its latest attempt (status 'failed', error saying why), so a lost cell
-- is visible with its reason and never counted twice.
-- NOT MATERIALIZED: stored is read twice, and a materialized CTE would read every file
-- of every sweep; inlined, a filter on sweep_id prunes the partitions (hive pruning).
CREATE OR REPLACE VIEW measurements AS
WITH stored AS NOT MATERIALIZED (
    SELECT sweep_id, * EXCLUDE (sweep_id)
        REPLACE (TRY_CAST(params AS JSON) AS params, TRY_CAST(extra AS JSON) AS extra)
    FROM read_parquet('results/measurements/sweep_id=*/*.parquet',
                      hive_partitioning = true, union_by_name = true,
                      hive_types = {'sweep_id': VARCHAR})
)
SELECT * FROM stored
UNION ALL BY NAME
SELECT * EXCLUDE (attempt)
FROM attempts a
WHERE NOT EXISTS (SELECT 1 FROM stored s WHERE s.sweep_id = a.sweep_id
                  AND s.env_id = a.env_id AND s.cell_id = a.cell_id)
QUALIFY a.attempt = max(a.attempt) OVER (PARTITION BY a.sweep_id, a.env_id, a.cell_id);

------------------------------------------------------------------ statistics helpers

-- Distribution-free confidence interval of a median from order statistics.
-- With n sorted samples x_(1) <= ... <= x_(n), the interval is [x_(j), x_(k)] with
--     j = max(1, floor((n - z*sqrt(n)) / 2)),   k = min(n, ceil(1 + (n + z*sqrt(n)) / 2))
-- (z = 1.96 for a nominal 95%, z = 2.241 for 97.5%). Its exact coverage is
--     P(j <= B <= k - 1),  B ~ Binomial(n, 1/2)
-- (median_ci_level below). For small n the ranks are clamped to 1 and n, so the real
-- confidence is that of [min, max] = 1 - 2^(1-n):
--     n=1: 0%   n=2: 50%   n=3: 75%   n=4: 87.5%   n=5: 93.75%   n=6: 96.9%
-- i.e. fewer than 6 repeats never reach 95%. For larger n the rule is conservative
-- (n=10 gives [min, max] = 99.8%, n=20 gives [x_(5), x_(16)] = 98.8%). cells.ci_level
-- states the coverage of each row's interval.
CREATE OR REPLACE MACRO median_ci_rank_low(n, z) AS
    greatest(1, floor((n - z * sqrt(n)) / 2))::BIGINT;

CREATE OR REPLACE MACRO median_ci_rank_high(n, z) AS
    least(n, ceil(1 + (n + z * sqrt(n)) / 2))::BIGINT;

CREATE OR REPLACE MACRO median_ci_level(n, j, k) AS
    CASE WHEN n > 0 THEN coalesce(list_sum(
        [exp(lgamma(n + 1) - lgamma(i + 1) - lgamma(n - i + 1) - n * ln(2)) FOR i IN range(j, k)]
    ), 0.0) END;

-- A cell's speedup over its sequential baseline, seq / cell, or an end of its interval:
-- (seq median, cell median) for the point, (seq ci975_low, cell ci975_high) for the low
-- end, (seq ci975_high, cell ci975_low) for the high end. ``same`` is true on the
-- baseline itself (1.0); a side without samples gives NULL.
CREATE OR REPLACE MACRO speedup_ratio(same, cell_n, seq_n, seq_value, cell_value) AS
    CASE WHEN cell_n = 0 OR seq_n = 0 THEN NULL
         WHEN same THEN 1.0
         ELSE seq_value / nullif(cell_value, 0) END;

-- The Bonferroni lower bound of that interval's confidence (NULL on the baseline).
CREATE OR REPLACE MACRO speedup_level(same, cell_n, seq_n, cell_level, seq_level) AS
    CASE WHEN cell_n = 0 OR seq_n = 0 OR same THEN NULL
         ELSE greatest(0.0, cell_level + seq_level - 1) END;

-- One row per stored measurement, with the environment's profile and host, and the
-- flags the statistics use: timed (not a warmup), good (ok with a wall time), and
-- bad_status, set on a row that is not good or that carries a cell status other than
-- 'ok' (the agent's cell_done status is stored on every row of the cell, so a cell
-- that timed out after some good repeats keeps those repeats and its status).
CREATE OR REPLACE VIEW samples AS
SELECT m.*,
       coalesce(e.profile_id, 'env:' || m.env_id) AS profile_id,
       e.host,
       e.python,
       coalesce(m.cell_key, md5(concat_ws('|', m.workload, m.params::VARCHAR, m.model,
                                          m.workers::VARCHAR))) AS pool_key,
       NOT coalesce(m.warmup, false) AS timed,
       coalesce(m.ok, false) AND m.wall_s IS NOT NULL AS good,
       CASE WHEN m.status IN ('not_applicable', 'timeout', 'failed') THEN m.status
            WHEN coalesce(m.ok, false) AND m.wall_s IS NOT NULL THEN NULL
            ELSE 'failed' END AS bad_status
FROM measurements m
LEFT JOIN environments e USING (sweep_id, env_id);

-- The status of a cell: 'ok' when no row has a bad_status, 'partial' when some timed
-- rows are good and some row has one (statistics from the good rows), otherwise the
-- bad status (not_applicable before timeout before failed).
CREATE OR REPLACE MACRO cell_status(n_good, n_bad, bad_status) AS
    CASE WHEN n_good > 0 AND n_bad = 0 THEN 'ok'
         WHEN n_good > 0 THEN 'partial'
         ELSE coalesce(bad_status, 'failed') END;

------------------------------------------------------------------ cells

-- A cell whose coefficient of variation (stdev / mean of the timed repeats) exceeds this
-- is flagged noisy in cells.noisy.
CREATE OR REPLACE MACRO cv_noisy_threshold() AS 0.10;

-- One row per (sweep_id, env_id, cell_id). Statistics over the timed good rows only;
-- a cell with none has n = 0, null statistics, and its reason.
-- ci_low_s/ci_high_s: the 95% rule above; ci975_low_s/ci975_high_s: the 97.5% rule
-- (used by the speedup intervals in matrix).
-- Rigor columns (after reason): rel_ci_width = (ci_high_s - ci_low_s) / median_s, the width
-- the agent's calibration aims at; noisy when cv > cv_noisy_threshold(); warmup_s (median
-- of the warmup runs, stored but excluded) and warmup_ratio = warmup_s / median_s; the
-- noise facts the agent read when the cell started (loadavg_1m, cpu_governor, cpu_mhz,
-- busy_procs: other runnable processes); calibration: calib_target_rel_ci, the width
-- reached (calib_reached_rel_ci) and why repeats stopped (calib_stop: target, budget,
-- max_repeats).
CREATE OR REPLACE VIEW cells AS
WITH agg AS (
    SELECT sweep_id, env_id, cell_id,
           any_value(cell_key) AS cell_key,
           any_value(workload) AS workload,
           any_value(params) AS params,
           any_value(model) AS model,
           any_value(workers) AS workers,
           bool_or(coalesce(headline, false)) AS headline,
           list_sort(list(wall_s) FILTER (WHERE timed AND good)) AS xs,
           count(*) FILTER (WHERE timed AND NOT good) AS n_failed,
           count(*) FILTER (WHERE bad_status IS NOT NULL) AS n_bad,
           arg_min(bad_status, CASE bad_status WHEN 'not_applicable' THEN 0
                                               WHEN 'timeout' THEN 1 ELSE 2 END)
               FILTER (WHERE bad_status IS NOT NULL) AS bad_status,
           quantile_cont(wall_s, 0.5) FILTER (WHERE timed AND good) AS median_s,
           quantile_cont(wall_s, 0.25) FILTER (WHERE timed AND good) AS q1_s,
           quantile_cont(wall_s, 0.75) FILTER (WHERE timed AND good) AS q3_s,
           avg(wall_s) FILTER (WHERE timed AND good) AS mean_s,
           stddev_samp(wall_s) FILTER (WHERE timed AND good) AS stdev_s,
           quantile_cont(cpu_user_s + cpu_sys_s, 0.5) FILTER (WHERE timed AND good) AS median_cpu_s,
           max(peak_rss_bytes) FILTER (WHERE timed AND good) AS peak_rss_bytes,
           string_agg(DISTINCT error, '; ' ORDER BY error) AS errors,
           quantile_cont(wall_s, 0.5) FILTER (WHERE NOT timed AND good) AS warmup_s,
           count(*) FILTER (WHERE NOT timed) AS n_warmup,
           max(TRY_CAST(extra->>'loadavg_1m' AS DOUBLE)) AS loadavg_1m,
           any_value(extra->>'cpu_governor') AS cpu_governor,
           any_value(TRY_CAST(extra->>'cpu_mhz' AS DOUBLE)) AS cpu_mhz,
           max(TRY_CAST(extra->>'busy_procs' AS INTEGER)) AS busy_procs,
           max(TRY_CAST(extra->>'calib_target_rel_ci' AS DOUBLE)) AS calib_target_rel_ci,
           max(TRY_CAST(extra->>'calib_reached_rel_ci' AS DOUBLE)) AS calib_reached_rel_ci,
           any_value(extra->>'calib_stop') FILTER (WHERE extra->>'calib_stop' IS NOT NULL)
               AS calib_stop
    FROM samples
    GROUP BY sweep_id, env_id, cell_id
), ranked AS (
    SELECT *, coalesce(len(xs), 0) AS n,
           median_ci_rank_low(len(xs), 1.96) AS j95, median_ci_rank_high(len(xs), 1.96) AS k95,
           median_ci_rank_low(len(xs), 2.241) AS j975, median_ci_rank_high(len(xs), 2.241) AS k975
    FROM agg
)
SELECT sweep_id, env_id, cell_id, cell_key, workload, params, model, workers, headline,
       cell_status(n, n_bad, bad_status) AS status,
       n, n_failed,
       median_s, q1_s, q3_s, q3_s - q1_s AS iqr_s,
       CASE WHEN n > 0 THEN xs[j95] END AS ci_low_s,
       CASE WHEN n > 0 THEN xs[k95] END AS ci_high_s,
       median_ci_level(n, j95, k95) AS ci_level,
       CASE WHEN n > 0 THEN xs[j975] END AS ci975_low_s,
       CASE WHEN n > 0 THEN xs[k975] END AS ci975_high_s,
       median_ci_level(n, j975, k975) AS ci975_level,
       mean_s, stdev_s, stdev_s / nullif(mean_s, 0) AS cv,
       xs[1] AS min_s, xs[-1] AS max_s,
       median_cpu_s, peak_rss_bytes,
       CASE WHEN cell_status(n, n_bad, bad_status) = 'ok' THEN NULL
            ELSE coalesce(errors, 'cell ended ' || bad_status, 'no timed repeat') END AS reason,
       -- added for measurement rigor (issue 4); columns above are stable
       (xs[k95] - xs[j95]) / nullif(median_s, 0) AS rel_ci_width,
       stdev_s / nullif(mean_s, 0) > cv_noisy_threshold() AS noisy,
       warmup_s, n_warmup, warmup_s / nullif(median_s, 0) AS warmup_ratio,
       loadavg_1m, cpu_governor, cpu_mhz, busy_procs,
       calib_target_rel_ci, calib_reached_rel_ci, calib_stop
FROM ranked;

------------------------------------------------------------------ paired speedups

-- The cells that share a speedup baseline (a *group*, block_group: one workload at one
-- set of params, its sequential cell and every model's cell) run interleaved in blocks:
-- block b of a group holds one timed repeat of every cell of the group, in a random
-- order. The speed of a cloud VM changes for seconds at a time, so a speedup taken as
-- median(sequential) / median(cell) over repeats timed at different moments can be off by
-- that change; the ratio of the two repeats of ONE block is not (both saw the same speed).
--
-- block_ratios: one row per timed good repeat of a cell whose block also holds a timed
-- good repeat of the group's sequential cell (the cell of model 'sequential' of the group;
-- the smallest cell_id should a group ever hold two). ratio = seq_wall_s / wall_s, the
-- speedup of this block (1 on the sequential cell itself). Rows without a block (version
-- 1 files, warmups) and blocks where the baseline failed have no ratio.
CREATE OR REPLACE VIEW block_ratios AS
WITH b AS (
    SELECT sweep_id, env_id, profile_id, host, python, block_group, block, block_pos,
           cell_id, pool_key AS cell_key, workload, model, workers, params,
           coalesce(headline, false) AS headline, wall_s, probe_s
    FROM samples
    WHERE timed AND good AND block IS NOT NULL AND block_group IS NOT NULL
), seq AS (
    SELECT * FROM b
    WHERE model = 'sequential'
    QUALIFY cell_id = min(cell_id) OVER (PARTITION BY sweep_id, env_id, block_group)
)
SELECT b.sweep_id, b.env_id, b.profile_id, b.host, b.python, b.block_group, b.block,
       b.block_pos, b.cell_id, b.cell_key, b.workload, b.model, b.workers, b.params,
       b.headline, b.wall_s, s.wall_s AS seq_wall_s, s.cell_id AS seq_cell_id,
       s.cell_key AS seq_cell_key,
       CASE WHEN b.cell_id = s.cell_id THEN 1.0
            ELSE s.wall_s / nullif(b.wall_s, 0) END AS ratio,
       b.probe_s, s.probe_s AS seq_probe_s
FROM b
JOIN seq s ON s.sweep_id = b.sweep_id AND s.env_id = b.env_id
          AND s.block_group = b.block_group AND s.block = b.block;

-- The paired speedup of a sorted list of block ratios rs (n_blocks of them): the median
-- (quantile_cont: an even count averages the two middle ratios, as DuckDB's median does)
-- and its distribution-free 95% interval [rs[j], rs[k]], with j and k the order-statistic
-- ranks of median_ci_rank_low/high above and the exact coverage median_ci_level(n, j, k).
-- This is the interval of the median of the ratio itself (Kalibera & Jones, "Rigorous
-- benchmarking in reasonable time": estimate the ratio per pair, not a ratio of two
-- medians), so no Bonferroni step is needed: 5 blocks give 93.75%, 6 or more >= 95%.
--
-- paired_cells: one row per (sweep_id, env_id, cell_id) with at least one block ratio.
-- On the sequential cell itself speedup is 1, the interval [1, 1] and the level NULL
-- (as in matrix: the ratio of a cell to itself is not an estimate).
CREATE OR REPLACE VIEW paired_cells AS
WITH agg AS (
    SELECT sweep_id, env_id, cell_id,
           any_value(profile_id) AS profile_id,
           any_value(cell_key) AS cell_key,
           any_value(block_group) AS block_group,
           min(seq_cell_id) AS seq_cell_id,
           list_sort(list(ratio) FILTER (WHERE ratio IS NOT NULL)) AS ratios,
           quantile_cont(ratio, 0.5) AS speedup
    FROM block_ratios
    GROUP BY sweep_id, env_id, cell_id
), ranked AS (
    SELECT *, len(ratios) AS n_blocks,
           median_ci_rank_low(len(ratios), 1.96) AS j,
           median_ci_rank_high(len(ratios), 1.96) AS k
    FROM agg
)
SELECT sweep_id, env_id, profile_id, cell_id, cell_key, block_group, seq_cell_id, n_blocks,
       speedup,
       CASE WHEN n_blocks > 0 THEN ratios[j] END AS speedup_ci_low,
       CASE WHEN n_blocks > 0 THEN ratios[k] END AS speedup_ci_high,
       CASE WHEN cell_id <> seq_cell_id THEN median_ci_level(n_blocks, j, k) END
           AS speedup_ci_level,
       ratios
FROM ranked;

------------------------------------------------------------------ profiles

-- One row per (sweep_id, profile_id) of the environments that were probed: the facts
-- a matrix title names. Hosts of one profile share them by construction of profile_id.
CREATE OR REPLACE VIEW profiles AS
SELECT sweep_id, profile_id,
       string_agg(DISTINCT host, ', ' ORDER BY host) AS hosts,
       count(DISTINCT host) AS n_hosts,
       string_agg(DISTINCT python, ', ' ORDER BY python) AS pythons,
       any_value(cpu_model) AS cpu_model,
       any_value(arch) AS arch,
       any_value(usable_cpus) AS usable_cpus,
       any_value(logical_cpus) AS logical_cpus,
       any_value(numa_nodes) AS numa_nodes,
       any_value(mem_total_bytes) AS mem_total_bytes,
       any_value(implementation) AS implementation,
       any_value(python_version) AS python_version,
       bool_or(free_threaded) AS free_threaded,
       bool_or(gil_enabled) AS gil_enabled
FROM environments
WHERE status IN ('ok', 'incomplete') AND profile_id IS NOT NULL
GROUP BY sweep_id, profile_id;

------------------------------------------------------------------ matrix

-- The headline cells of each (sweep, env, workload), each joined to the sequential
-- headline cell of the same env and workload, with two estimates of the speedup:
--
-- paired (speedup_method 'paired', the default wherever it exists): the cell ran in
-- blocks with that sequential cell as its group's baseline (n_blocks > 0 blocks holding
-- both). speedup = the median of the per-block ratios seq_b / cell_b and its 95%
-- order-statistic interval, from paired_cells above. It equals
--     median(seq.wall_s / cell.wall_s)
-- over the timed good rows of the two cells joined on (sweep_id, env_id, block_group,
-- block): docs/views.md has that query over the raw Parquet files.
--
-- unpaired (speedup_method 'unpaired': version-1 data without blocks, or a cell whose
-- group has no paired sequential cell), also kept as speedup_unpaired* on every row:
-- seq_median_s / median_s. Its interval combines the two medians' 97.5% intervals
-- (Bonferroni: both cover with probability >= 95%, so the ratio interval
-- [seq_lo / model_hi, seq_hi / model_lo] covers with >= 95% under the same small-n
-- caveat as above). speedup_unpaired_ci_level is that Bonferroni bound computed from the
-- two exact coverages: 87.5% with 5 repeats each, 93.8% with 6, >= 95% from 7 on.
--
-- Either interval contains its estimate by construction (a median lies within its own
-- order-statistic interval). The sequential row itself has speedup 1 and the interval
-- [1, 1] (the ratio of a cell to itself), level NULL. speedup_method is NULL when there
-- is no speedup (no baseline, or a side without good repeats).
CREATE OR REPLACE VIEW matrix AS
WITH h AS (
    SELECT c.*, e.profile_id, e.host, e.python, e.hostname, e.cpu_model, e.usable_cpus,
           e.numa_nodes, e.mem_total_bytes, e.python_version, e.implementation,
           e.free_threaded, e.gil_enabled
    FROM cells c
    LEFT JOIN environments e USING (sweep_id, env_id)
    WHERE c.headline
), s AS (
    SELECT sweep_id, env_id, workload, cell_id, n, median_s, ci975_low_s, ci975_high_s,
           ci975_level, status
    FROM h WHERE model = 'sequential'
    -- one baseline per (sweep, env, workload) even if a plan marked two as headline
    QUALIFY row_number() OVER (PARTITION BY sweep_id, env_id, workload ORDER BY cell_id) = 1
), u AS (
    SELECT h.*,
           s.cell_id AS seq_cell_id, s.n AS seq_n, s.median_s AS seq_median_s,
           s.status AS seq_status,
           speedup_ratio(h.cell_id = s.cell_id, h.n, s.n, s.median_s, h.median_s)
               AS speedup_unpaired,
           speedup_ratio(h.cell_id = s.cell_id, h.n, s.n, s.ci975_low_s, h.ci975_high_s)
               AS speedup_unpaired_ci_low,
           speedup_ratio(h.cell_id = s.cell_id, h.n, s.n, s.ci975_high_s, h.ci975_low_s)
               AS speedup_unpaired_ci_high,
           speedup_level(h.cell_id = s.cell_id, h.n, s.n, h.ci975_level, s.ci975_level)
               AS speedup_unpaired_ci_level,
           -- paired only against the very baseline the unpaired estimate uses
           coalesce(p.n_blocks > 0 AND p.seq_cell_id = s.cell_id, false) AS paired,
           p.n_blocks AS p_n_blocks, p.speedup AS p_speedup, p.speedup_ci_low AS p_ci_low,
           p.speedup_ci_high AS p_ci_high, p.speedup_ci_level AS p_ci_level
    FROM h
    LEFT JOIN s ON h.sweep_id = s.sweep_id AND h.env_id = s.env_id AND h.workload = s.workload
    LEFT JOIN paired_cells p ON p.sweep_id = h.sweep_id AND p.env_id = h.env_id
                            AND p.cell_id = h.cell_id
)
SELECT sweep_id, env_id, profile_id, host, python, workload, model, workers,
       cell_id, params, n, median_s, ci_low_s, ci_high_s,
       seq_n, seq_median_s,
       CASE WHEN paired THEN p_speedup ELSE speedup_unpaired END AS speedup,
       CASE WHEN paired THEN p_ci_low ELSE speedup_unpaired_ci_low END AS speedup_ci_low,
       CASE WHEN paired THEN p_ci_high ELSE speedup_unpaired_ci_high END AS speedup_ci_high,
       CASE WHEN paired THEN p_ci_level ELSE speedup_unpaired_ci_level END AS speedup_ci_level,
       status,
       coalesce(reason,
                CASE WHEN seq_cell_id IS NULL THEN 'no sequential baseline'
                     WHEN seq_n = 0 THEN 'sequential baseline ' || seq_status END) AS reason,
       hostname, cpu_model, usable_cpus, numa_nodes, mem_total_bytes,
       python_version, implementation, free_threaded, gil_enabled,
       -- added with interleaved blocks (schema version 2); columns above are stable
       CASE WHEN paired THEN 'paired'
            WHEN speedup_unpaired IS NOT NULL THEN 'unpaired' END AS speedup_method,
       CASE WHEN paired THEN p_n_blocks ELSE 0 END AS n_blocks,
       speedup_unpaired, speedup_unpaired_ci_low, speedup_unpaired_ci_high,
       speedup_unpaired_ci_level
FROM u;

------------------------------------------------------------------ profile_matrix

-- Cells pooled over the hosts of one hardware profile: all timed samples of the
-- environments sharing profile_id, grouped by cell_key (same workload, params, model
-- and workers on every host). Same statistics as cells.
CREATE OR REPLACE VIEW profile_cells AS
WITH agg AS (
    SELECT sweep_id, profile_id, pool_key AS cell_key,
           any_value(workload) AS workload,
           any_value(params) AS params,
           any_value(model) AS model,
           any_value(workers) AS workers,
           bool_or(coalesce(headline, false)) AS headline,
           string_agg(DISTINCT host, ', ' ORDER BY host) AS hosts,
           count(DISTINCT env_id) AS n_envs,
           list_sort(list(wall_s) FILTER (WHERE timed AND good)) AS xs,
           count(*) FILTER (WHERE timed AND NOT good) AS n_failed,
           count(*) FILTER (WHERE bad_status IS NOT NULL) AS n_bad,
           arg_min(bad_status, CASE bad_status WHEN 'not_applicable' THEN 0
                                               WHEN 'timeout' THEN 1 ELSE 2 END)
               FILTER (WHERE bad_status IS NOT NULL) AS bad_status,
           quantile_cont(wall_s, 0.5) FILTER (WHERE timed AND good) AS median_s,
           quantile_cont(wall_s, 0.25) FILTER (WHERE timed AND good) AS q1_s,
           quantile_cont(wall_s, 0.75) FILTER (WHERE timed AND good) AS q3_s,
           avg(wall_s) FILTER (WHERE timed AND good) AS mean_s,
           stddev_samp(wall_s) FILTER (WHERE timed AND good) AS stdev_s,
           string_agg(DISTINCT error, '; ' ORDER BY error) AS errors
    FROM samples
    GROUP BY sweep_id, profile_id, pool_key
), ranked AS (
    SELECT *, coalesce(len(xs), 0) AS n,
           median_ci_rank_low(len(xs), 1.96) AS j95, median_ci_rank_high(len(xs), 1.96) AS k95,
           median_ci_rank_low(len(xs), 2.241) AS j975, median_ci_rank_high(len(xs), 2.241) AS k975
    FROM agg
)
SELECT sweep_id, profile_id, cell_key, workload, params, model, workers, headline, hosts, n_envs,
       cell_status(n, n_bad, bad_status) AS status,
       n, n_failed,
       median_s, q1_s, q3_s, q3_s - q1_s AS iqr_s,
       CASE WHEN n > 0 THEN xs[j95] END AS ci_low_s,
       CASE WHEN n > 0 THEN xs[k95] END AS ci_high_s,
       median_ci_level(n, j95, k95) AS ci_level,
       CASE WHEN n > 0 THEN xs[j975] END AS ci975_low_s,
       CASE WHEN n > 0 THEN xs[k975] END AS ci975_high_s,
       median_ci_level(n, j975, k975) AS ci975_level,
       mean_s, stdev_s, stdev_s / nullif(mean_s, 0) AS cv,
       CASE WHEN cell_status(n, n_bad, bad_status) = 'ok' THEN NULL
            ELSE coalesce(errors, 'cell ended ' || bad_status, 'no timed repeat') END AS reason
FROM ranked;

-- The block ratios pooled over the environments of one hardware profile, by cell_key:
-- the median and 95% order-statistic interval of all (env, block) ratios of the cell in
-- the profile (as paired_cells, over more blocks). n_block_envs: the environments that
-- gave ratios. seq_cell_key is NULL should the ratios come from two baselines.
CREATE OR REPLACE VIEW paired_profile_cells AS
WITH agg AS (
    SELECT sweep_id, profile_id, cell_key,
           CASE WHEN count(DISTINCT seq_cell_key) = 1 THEN min(seq_cell_key) END
               AS seq_cell_key,
           count(DISTINCT env_id) AS n_block_envs,
           list_sort(list(ratio) FILTER (WHERE ratio IS NOT NULL)) AS ratios,
           quantile_cont(ratio, 0.5) AS speedup
    FROM block_ratios
    GROUP BY sweep_id, profile_id, cell_key
), ranked AS (
    SELECT *, len(ratios) AS n_blocks,
           median_ci_rank_low(len(ratios), 1.96) AS j,
           median_ci_rank_high(len(ratios), 1.96) AS k
    FROM agg
)
SELECT sweep_id, profile_id, cell_key, seq_cell_key, n_block_envs, n_blocks, speedup,
       CASE WHEN n_blocks > 0 THEN ratios[j] END AS speedup_ci_low,
       CASE WHEN n_blocks > 0 THEN ratios[k] END AS speedup_ci_high,
       CASE WHEN cell_key <> seq_cell_key THEN median_ci_level(n_blocks, j, k) END
           AS speedup_ci_level,
       ratios
FROM ranked;

-- matrix pooled by profile: the paired speedup from paired_profile_cells where the cell
-- has block ratios against the profile's sequential headline cell, else the unpaired
-- estimate from the pooled medians (profile_cells) as in matrix. Same extra columns as
-- matrix, plus n_block_envs.
CREATE OR REPLACE VIEW profile_matrix AS
WITH h AS (
    SELECT * FROM profile_cells WHERE headline
), s AS (
    SELECT sweep_id, profile_id, workload, cell_key, n, median_s, ci975_low_s, ci975_high_s,
           ci975_level, status
    FROM h WHERE model = 'sequential'
    QUALIFY row_number() OVER (PARTITION BY sweep_id, profile_id, workload ORDER BY cell_key) = 1
), u AS (
    SELECT h.*,
           s.cell_key AS seq_cell_key, s.n AS seq_n, s.median_s AS seq_median_s,
           s.status AS seq_status,
           speedup_ratio(h.cell_key = s.cell_key, h.n, s.n, s.median_s, h.median_s)
               AS speedup_unpaired,
           speedup_ratio(h.cell_key = s.cell_key, h.n, s.n, s.ci975_low_s, h.ci975_high_s)
               AS speedup_unpaired_ci_low,
           speedup_ratio(h.cell_key = s.cell_key, h.n, s.n, s.ci975_high_s, h.ci975_low_s)
               AS speedup_unpaired_ci_high,
           speedup_level(h.cell_key = s.cell_key, h.n, s.n, h.ci975_level, s.ci975_level)
               AS speedup_unpaired_ci_level,
           coalesce(p.n_blocks > 0 AND p.seq_cell_key = s.cell_key, false) AS paired,
           p.n_blocks AS p_n_blocks, p.n_block_envs AS p_n_block_envs, p.speedup AS p_speedup,
           p.speedup_ci_low AS p_ci_low, p.speedup_ci_high AS p_ci_high,
           p.speedup_ci_level AS p_ci_level
    FROM h
    LEFT JOIN s ON h.sweep_id = s.sweep_id AND h.profile_id = s.profile_id
               AND h.workload = s.workload
    LEFT JOIN paired_profile_cells p ON p.sweep_id = h.sweep_id
                                    AND p.profile_id = h.profile_id
                                    AND p.cell_key = h.cell_key
)
SELECT u.sweep_id, u.profile_id, u.hosts, u.n_envs, u.workload, u.model, u.workers,
       u.cell_key, u.params, u.n, u.median_s, u.ci_low_s, u.ci_high_s,
       u.seq_n, u.seq_median_s,
       CASE WHEN paired THEN p_speedup ELSE speedup_unpaired END AS speedup,
       CASE WHEN paired THEN p_ci_low ELSE speedup_unpaired_ci_low END AS speedup_ci_low,
       CASE WHEN paired THEN p_ci_high ELSE speedup_unpaired_ci_high END AS speedup_ci_high,
       CASE WHEN paired THEN p_ci_level ELSE speedup_unpaired_ci_level END AS speedup_ci_level,
       u.status,
       coalesce(u.reason,
                CASE WHEN u.seq_cell_key IS NULL THEN 'no sequential baseline'
                     WHEN u.seq_n = 0 THEN 'sequential baseline ' || u.seq_status END) AS reason,
       p.hosts AS profile_hosts, p.pythons, p.cpu_model, p.arch, p.usable_cpus, p.numa_nodes,
       p.mem_total_bytes, p.python_version, p.implementation, p.free_threaded, p.gil_enabled,
       -- added with interleaved blocks (schema version 2); columns above are stable
       CASE WHEN paired THEN 'paired'
            WHEN speedup_unpaired IS NOT NULL THEN 'unpaired' END AS speedup_method,
       CASE WHEN paired THEN p_n_blocks ELSE 0 END AS n_blocks,
       CASE WHEN paired THEN p_n_block_envs ELSE 0 END AS n_block_envs,
       u.speedup_unpaired, u.speedup_unpaired_ci_low, u.speedup_unpaired_ci_high,
       u.speedup_unpaired_ci_level
FROM u
LEFT JOIN profiles p ON u.sweep_id = p.sweep_id AND u.profile_id = p.profile_id;

------------------------------------------------------------------ comparisons

-- The same cell (same cell_key: workload, params, model, workers) in two pooled
-- groups (sweep, profile), every ordered pair. time_ratio = a_median_s / b_median_s
-- (below 1: A is faster), its interval from the two 97.5% intervals as in matrix,
-- time_ratio_ci_level its Bonferroni confidence, and significant when the interval
-- excludes 1. Filter on a_/b_ columns to compare two sweeps, two builds or two machines.
-- Unpaired on purpose: two sweeps or two profiles never ran in the same blocks, so there
-- is no per-block ratio to take (block_ratios pairs cells of one group in one env only);
-- the interval is the conservative two-medians one.
CREATE OR REPLACE VIEW compare_cells AS
SELECT a.cell_key, a.workload, a.model, a.workers, a.headline,
       a.sweep_id AS a_sweep_id, a.profile_id AS a_profile_id, a.hosts AS a_hosts,
       b.sweep_id AS b_sweep_id, b.profile_id AS b_profile_id, b.hosts AS b_hosts,
       a.n AS a_n, b.n AS b_n, a.median_s AS a_median_s, b.median_s AS b_median_s,
       a.median_s / nullif(b.median_s, 0) AS time_ratio,
       a.ci975_low_s / nullif(b.ci975_high_s, 0) AS time_ratio_ci_low,
       a.ci975_high_s / nullif(b.ci975_low_s, 0) AS time_ratio_ci_high,
       greatest(0.0, a.ci975_level + b.ci975_level - 1) AS time_ratio_ci_level,
       a.ci975_low_s > b.ci975_high_s OR a.ci975_high_s < b.ci975_low_s AS significant
FROM profile_cells a
JOIN profile_cells b
  ON a.cell_key = b.cell_key
 AND (a.sweep_id <> b.sweep_id OR a.profile_id <> b.profile_id)
WHERE a.n > 0 AND b.n > 0;
