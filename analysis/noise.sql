-- Host stability: was a host steady enough for ratios of timings taken one after another
-- to be trusted? (issue 12)
--
-- Load after views.sql, in the DuckDB shell:
--     .read analysis/views.sql
--     .read analysis/noise.sql
--     SELECT host, python, verdict, reasons FROM host_noise;
--     SELECT host, python, message FROM control_checks WHERE control_failed;
--
-- The agent times a fixed ~1 ms loop, the speed probe (harness/agent/noise.py), right
-- before each timed repeat and stores its time in probe_s; the repeat's extra carries
-- the machine's steal and iowait shares over the repeat (steal_pct, iowait_pct) and the
-- load average (loadavg_1m). Every stored probe counts, warmups' too. A sweep stored
-- before the probe existed has none: its verdict is 'unknown'.
--
-- The verdict of one environment (sweep x host x interpreter), from the probes' times
-- (thresholds in noise_thresholds() below; `harness probe --noise` applies the same rules
-- in harness/stability.py, and tests/unit/test_stability.py holds the two to the same
-- verdict and reasons on the same series):
--
--   unknown   fewer than min_probes probes.
--   unstable  any of
--             - two speeds: the sorted probes split into a lower and an upper group, each
--               holding at least bimodal_min_share_pct % of them, whose medians differ by
--               a factor >= bimodal_ratio (the split maximising that factor is taken; a
--               VM switching between two CPU speeds for seconds at a time shows this);
--             - pyperf's checks (pyperf check): standard deviation >= unstable_cv of the
--               mean; minimum or maximum >= unstable_extreme away from the mean. They are
--               applied to the probes within Tukey's fences [Q1 - 1.5 IQR, Q3 + 1.5 IQR]
--               (the outliers `pyperf stats` counts): one 1 ms probe preempted by another
--               process for a scheduler tick is 5x the rest and would fail the max check
--               on any shared host, though it says nothing about a repeat of a second. The
--               outliers are counted instead (below), and a slow mode holding 10% of the
--               probes or more is the first rule's;
--             - mean steal >= unstable_steal_pct (the hypervisor ran someone else a tenth
--               of the time; cloud operators replace such instances).
--   noisy     otherwise, any of
--             - probe p90 / p10 >= noisy_p90_p10 (a 10% spread between fast and slow
--               probes: ratios move by that much);
--             - outliers (outside the fences) >= noisy_outlier_pct % of the probes;
--             - mean steal >= noisy_steal_pct.
--   stable    otherwise.
--
-- reasons lists every triggered rule ('; '-separated), NULL when stable.
-- The load average is reported, not judged: the benchmark's own workers raise it.

------------------------------------------------------------------ thresholds

-- The one place the thresholds are written (harness/stability.py THRESHOLDS mirrors this
-- struct; a test checks they are equal).
CREATE OR REPLACE MACRO noise_thresholds() AS {
    'min_probes': 10,
    'bimodal_min_share_pct': 10,
    'bimodal_ratio': 1.25::DOUBLE,
    'unstable_cv': 0.10::DOUBLE,
    'unstable_extreme': 0.50::DOUBLE,
    'unstable_steal_pct': 10.0::DOUBLE,
    'noisy_p90_p10': 1.10::DOUBLE,
    'noisy_outlier_pct': 5.0::DOUBLE,
    'noisy_steal_pct': 2.0::DOUBLE,
    'control_low': 0.85::DOUBLE,
    'control_high': 1.15::DOUBLE
};

------------------------------------------------------------------ list statistics

-- The q-quantile of a sorted list, linear interpolation between the two nearest ranks
-- (as quantile_cont, numpy's default and harness/stability.py's quantile).
CREATE OR REPLACE MACRO sorted_quantile(xs, q) AS
    CASE WHEN len(xs) > 0 THEN
        xs[floor((len(xs) - 1) * q)::BIGINT + 1]
        + ((len(xs) - 1) * q - floor((len(xs) - 1) * q))
          * (xs[least(floor((len(xs) - 1) * q)::BIGINT + 2, len(xs))]
             - xs[floor((len(xs) - 1) * q)::BIGINT + 1])
    END;

-- Twice the median of xs[a..b] of a sorted list (1-based, inclusive).
CREATE OR REPLACE MACRO sorted_median2(xs, a, b) AS
    xs[a + (b - a) // 2] + xs[b - (b - a) // 2];

-- The two-speeds factor of a sorted list: over the splits xs[1..k] | xs[k+1..n] that
-- leave each side at least ceil(n * share_pct / 100) values, the largest ratio of the
-- upper side's median to the lower side's. NULL when no split qualifies.
CREATE OR REPLACE MACRO probe_split_ratio(xs, share_pct) AS
    list_max([sorted_median2(xs, k + 1, len(xs)) / sorted_median2(xs, 1, k)
              FOR k IN range((len(xs) * share_pct + 99) // 100,
                             len(xs) - (len(xs) * share_pct + 99) // 100 + 1)]);

------------------------------------------------------------------ the verdict

-- unknown, unstable, noisy or stable from an environment's probe statistics (see the top).
CREATE OR REPLACE MACRO noise_verdict(n, split_ratio, inlier_cv, inlier_min_dev,
                                      inlier_max_dev, steal_mean_pct, p90_p10,
                                      outlier_pct) AS
    CASE WHEN n < noise_thresholds().min_probes THEN 'unknown'
         WHEN split_ratio >= noise_thresholds().bimodal_ratio
              OR inlier_cv >= noise_thresholds().unstable_cv
              OR inlier_min_dev >= noise_thresholds().unstable_extreme
              OR inlier_max_dev >= noise_thresholds().unstable_extreme
              OR steal_mean_pct >= noise_thresholds().unstable_steal_pct THEN 'unstable'
         WHEN p90_p10 >= noise_thresholds().noisy_p90_p10
              OR outlier_pct >= noise_thresholds().noisy_outlier_pct
              OR steal_mean_pct >= noise_thresholds().noisy_steal_pct THEN 'noisy'
         ELSE 'stable' END;

-- Every rule the statistics trigger, in the order above, '; '-separated (NULL: none).
CREATE OR REPLACE MACRO noise_reasons(n, split_ratio, inlier_cv, inlier_min_dev,
                                      inlier_max_dev, steal_mean_pct, p90_p10,
                                      outlier_pct) AS
    CASE WHEN n = 0 THEN 'no speed probes'
         WHEN n < noise_thresholds().min_probes
             THEN printf('%d speed probes (< %d)', n, noise_thresholds().min_probes)
         ELSE nullif(concat_ws('; ',
             CASE WHEN split_ratio >= noise_thresholds().bimodal_ratio
                  THEN printf('two speeds: upper/lower median %.2fx (>= %.2f)',
                              split_ratio, noise_thresholds().bimodal_ratio) END,
             CASE WHEN inlier_cv >= noise_thresholds().unstable_cv
                  THEN printf('probe stdev %.0f%% of the mean (>= %.0f%%)',
                              100 * inlier_cv, 100 * noise_thresholds().unstable_cv) END,
             CASE WHEN inlier_min_dev >= noise_thresholds().unstable_extreme
                  THEN printf('probe min %.0f%% below the mean (>= %.0f%%)',
                              100 * inlier_min_dev,
                              100 * noise_thresholds().unstable_extreme) END,
             CASE WHEN inlier_max_dev >= noise_thresholds().unstable_extreme
                  THEN printf('probe max %.0f%% above the mean (>= %.0f%%)',
                              100 * inlier_max_dev,
                              100 * noise_thresholds().unstable_extreme) END,
             CASE WHEN steal_mean_pct >= noise_thresholds().unstable_steal_pct
                  THEN printf('steal %.1f%% (>= %.0f%%)', steal_mean_pct,
                              noise_thresholds().unstable_steal_pct)
                  WHEN steal_mean_pct >= noise_thresholds().noisy_steal_pct
                  THEN printf('steal %.1f%% (>= %.0f%%)', steal_mean_pct,
                              noise_thresholds().noisy_steal_pct) END,
             CASE WHEN p90_p10 >= noise_thresholds().noisy_p90_p10
                  THEN printf('probe p90/p10 %.2f (>= %.2f)', p90_p10,
                              noise_thresholds().noisy_p90_p10) END,
             CASE WHEN outlier_pct >= noise_thresholds().noisy_outlier_pct
                  THEN printf('%.0f%% of probes outliers (>= %.0f%%)', outlier_pct,
                              noise_thresholds().noisy_outlier_pct) END
         ), '') END;

------------------------------------------------------------------ per sample

-- Every stored measurement row with its noise facts: the speed probe timed before it
-- (probe_s; NULL before schema version 2) and the machine's steal and iowait shares
-- over the repeat and the load average when the cell started.
CREATE OR REPLACE VIEW noise_samples AS
SELECT sweep_id, env_id, host, python, profile_id, cell_id, workload, model, workers,
       repeat, warmup, block, block_pos, block_group, wall_s, probe_s,
       TRY_CAST(extra->>'steal_pct' AS DOUBLE) AS steal_pct,
       TRY_CAST(extra->>'iowait_pct' AS DOUBLE) AS iowait_pct,
       TRY_CAST(extra->>'loadavg_1m' AS DOUBLE) AS loadavg_1m
FROM samples;

------------------------------------------------------------------ per environment

-- One row per (sweep_id, env_id), every environment (one that never ran has no probe:
-- 'unknown'). Probe statistics over all its probes: n_probes, median, mean, cv
-- (stdev / mean), min, max, p10, p90, p90_p10, split_ratio (the two-speeds factor) and
-- bimodal (split_ratio >= bimodal_ratio); over the probes within Tukey's fences:
-- n_outliers, outlier_pct, inlier_cv, inlier_min_dev and inlier_max_dev ((mean - min) /
-- mean and (max - mean) / mean: pyperf's checks). steal_mean_pct and steal_max_pct over
-- the repeats, iowait_mean_pct, loadavg_max. Then verdict and reasons.
CREATE OR REPLACE VIEW host_noise AS
WITH per_env AS (
    SELECT e.sweep_id, e.env_id,
           any_value(e.host) AS host,
           any_value(e.python) AS python,
           any_value(coalesce(e.profile_id, 'env:' || e.env_id)) AS profile_id,
           coalesce(list_sort(list(s.probe_s) FILTER (WHERE s.probe_s > 0)),
                    []::DOUBLE[]) AS xs,
           avg(s.steal_pct) AS steal_mean_pct,
           max(s.steal_pct) AS steal_max_pct,
           avg(s.iowait_pct) AS iowait_mean_pct,
           max(s.loadavg_1m) AS loadavg_max
    FROM environments e
    LEFT JOIN noise_samples s USING (sweep_id, env_id)
    GROUP BY e.sweep_id, e.env_id
), stats AS (
    SELECT *, len(xs) AS n,
           sorted_quantile(xs, 0.25) AS q1, sorted_quantile(xs, 0.75) AS q3,
           probe_split_ratio(xs, noise_thresholds().bimodal_min_share_pct) AS split_ratio
    FROM per_env
), fenced AS (
    SELECT *, [x FOR x IN xs IF x >= q1 - 1.5 * (q3 - q1) AND x <= q3 + 1.5 * (q3 - q1)]
                  AS inliers
    FROM stats
), measured AS (
    SELECT sweep_id, env_id, host, python, profile_id,
           n AS n_probes,
           sorted_quantile(xs, 0.5) AS probe_median_s,
           list_avg(xs) AS probe_mean_s,
           list_stddev_samp(xs) / nullif(list_avg(xs), 0) AS probe_cv,
           xs[1] AS probe_min_s, xs[-1] AS probe_max_s,
           sorted_quantile(xs, 0.1) AS probe_p10_s, sorted_quantile(xs, 0.9) AS probe_p90_s,
           sorted_quantile(xs, 0.9) / nullif(sorted_quantile(xs, 0.1), 0) AS p90_p10,
           split_ratio,
           split_ratio >= noise_thresholds().bimodal_ratio AS bimodal,
           n - len(inliers) AS n_outliers,
           100.0 * (n - len(inliers)) / nullif(n, 0) AS outlier_pct,
           list_stddev_samp(inliers) / nullif(list_avg(inliers), 0) AS inlier_cv,
           (list_avg(inliers) - inliers[1]) / nullif(list_avg(inliers), 0) AS inlier_min_dev,
           (inliers[-1] - list_avg(inliers)) / nullif(list_avg(inliers), 0) AS inlier_max_dev,
           steal_mean_pct, steal_max_pct, iowait_mean_pct, loadavg_max
    FROM fenced
)
SELECT *,
       noise_verdict(n_probes, split_ratio, inlier_cv, inlier_min_dev, inlier_max_dev,
                     steal_mean_pct, p90_p10, outlier_pct) AS verdict,
       noise_reasons(n_probes, split_ratio, inlier_cv, inlier_min_dev, inlier_max_dev,
                     steal_mean_pct, p90_p10, outlier_pct) AS reasons
FROM measured;

------------------------------------------------------------------ the built-in control

-- On a build with the GIL (not free-threaded, or free-threaded with the GIL enabled),
-- CPU-bound threads and asyncio run one thing at a time: their speedup is ~1.0x by
-- construction. When either's speedup interval (matrix: the headline cpu_bound cell) is
-- not contained in [control_low, control_high], the host's timings moved under the
-- measurement and its CPU-bound ratios are not to be trusted.
-- One row per (sweep_id, env_id) that has such a cell with an interval: n_checked,
-- n_failed, control_failed, detail (each failed model: speedup [interval]) and message.
CREATE OR REPLACE VIEW control_checks AS
WITH checked AS (
    SELECT sweep_id, env_id, host, python, profile_id, model, speedup,
           speedup_ci_low, speedup_ci_high,
           speedup_ci_low < noise_thresholds().control_low
               OR speedup_ci_high > noise_thresholds().control_high AS failed
    FROM matrix
    WHERE workload = 'cpu_bound' AND model IN ('threads', 'asyncio')
      AND (coalesce(NOT free_threaded, true) OR coalesce(gil_enabled, false))
      AND speedup_ci_low IS NOT NULL AND speedup_ci_high IS NOT NULL
)
SELECT sweep_id, env_id,
       any_value(host) AS host, any_value(python) AS python,
       any_value(profile_id) AS profile_id,
       count(*) AS n_checked,
       count(*) FILTER (WHERE failed) AS n_failed,
       bool_or(failed) AS control_failed,
       string_agg(printf('%s %.2fx [%.2f-%.2f]', model, speedup, speedup_ci_low,
                         speedup_ci_high), '; ' ORDER BY model) FILTER (WHERE failed)
           AS detail,
       CASE WHEN bool_or(failed)
            THEN printf('control failed on %s: its CPU-bound ratios are not to be trusted '
                        || '(%s outside [%.2f, %.2f])', any_value(host),
                        string_agg(printf('%s %.2fx [%.2f-%.2f]', model, speedup,
                                          speedup_ci_low, speedup_ci_high), '; '
                                   ORDER BY model) FILTER (WHERE failed),
                        noise_thresholds().control_low, noise_thresholds().control_high)
       END AS message
FROM checked
GROUP BY sweep_id, env_id;
