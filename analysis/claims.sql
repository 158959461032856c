-- The guide's benchmark table (shared/seed/python-concurrency-guide.txt, "Benchmark
-- Comparison") as data, and each of its claims checked against profile_matrix.
--
-- Load after views.sql, in the DuckDB shell:
--     .read analysis/views.sql
--     .read analysis/claims.sql
--     SELECT workload, model, claim_text, profile_id, speedup, verdict FROM claims;
--
-- guide_table: every cell of the guide's table. The guide's columns map to models:
--   Sequential -> sequential, ThreadPool -> threads, ProcessPool -> processes and
--   mp_pool (the guide treats both as one), asyncio -> asyncio (native coroutines;
--   for disk the guide says "via to_thread", so asyncio_to_thread).
-- claim_low/claim_high is the claimed speedup range. A single number "1.0x" is read
-- as the values that round to it, [0.95, 1.05]. needs_cpus: the fewest usable CPUs
-- with which the claim is possible at all (a speedup from parallel CPU work cannot
-- exceed the number of CPUs), so a refutation on a small machine says why.
CREATE OR REPLACE VIEW guide_table AS
SELECT * FROM (VALUES
    ('cpu_bound',        'Sequential',  'sequential',        1.0,  1.0,  '1.0x',                     NULL),
    ('cpu_bound',        'ThreadPool',  'threads',           0.95, 1.05, '1.0x (GIL)',               NULL),
    ('cpu_bound',        'ProcessPool', 'processes',         7.0,  8.0,  '7-8x',                     7),
    ('cpu_bound',        'ProcessPool', 'mp_pool',           7.0,  8.0,  '7-8x',                     7),
    ('cpu_bound',        'asyncio',     'asyncio',           0.95, 1.05, '1.0x',                     NULL),
    ('net_low_latency',  'Sequential',  'sequential',        1.0,  1.0,  '1.0x',                     NULL),
    ('net_low_latency',  'ThreadPool',  'threads',           3.0,  5.0,  '3-5x',                     NULL),
    ('net_low_latency',  'ProcessPool', 'processes',         2.0,  4.0,  '2-4x',                     NULL),
    ('net_low_latency',  'ProcessPool', 'mp_pool',           2.0,  4.0,  '2-4x',                     NULL),
    ('net_low_latency',  'asyncio',     'asyncio',           5.0,  10.0, '5-10x',                    NULL),
    ('net_high_latency', 'Sequential',  'sequential',        1.0,  1.0,  '1.0x',                     NULL),
    ('net_high_latency', 'ThreadPool',  'threads',           8.0,  15.0, '8-15x',                    NULL),
    ('net_high_latency', 'ProcessPool', 'processes',         6.0,  12.0, '6-12x',                    NULL),
    ('net_high_latency', 'ProcessPool', 'mp_pool',           6.0,  12.0, '6-12x',                    NULL),
    ('net_high_latency', 'asyncio',     'asyncio',           15.0, 50.0, '15-50x',                   NULL),
    ('disk_io',          'Sequential',  'sequential',        1.0,  1.0,  '1.0x',                     NULL),
    ('disk_io',          'ThreadPool',  'threads',           2.0,  3.0,  '2-3x',                     NULL),
    ('disk_io',          'ProcessPool', 'processes',         1.0,  2.0,  '1-2x',                     NULL),
    ('disk_io',          'ProcessPool', 'mp_pool',           1.0,  2.0,  '1-2x',                     NULL),
    ('disk_io',          'asyncio',     'asyncio_to_thread', 1.0,  2.0,  '1.0x-2.0x (via to_thread)', NULL)
) AS t(workload, guide_column, model, claim_low, claim_high, claim_text, needs_cpus);

-- One row per (sweep, profile, claim): the claims are every guide_table row but the
-- sequential baseline (1.0x by definition). verdict:
--   confirmed       the speedup interval [speedup_ci_low, speedup_ci_high] overlaps
--                   [claim_low, claim_high]
--   refuted         the interval lies wholly outside the claimed range
--   not measurable  no such cell in the profile, or it did not run (n/a, failed,
--                   timeout) or has no sequential baseline; reason says which
-- The interval is profile_matrix's (Bonferroni over two 97.5% order-statistic median
-- intervals); ci_level states its real confidence (low with few repeats, where an
-- interval is wide and a refutation is the stronger statement).
CREATE OR REPLACE VIEW claims AS
WITH claim AS (
    SELECT * FROM guide_table WHERE model <> 'sequential'
), prof AS (
    SELECT DISTINCT sweep_id, profile_id FROM profile_matrix
), joined AS (
    SELECT p.sweep_id, p.profile_id, c.*,
           m.hosts, m.workers, m.n, m.status, m.reason, m.speedup, m.speedup_ci_low,
           m.speedup_ci_high, m.speedup_ci_level AS ci_level
    FROM prof p
    CROSS JOIN claim c
    LEFT JOIN profile_matrix m
      ON m.sweep_id = p.sweep_id AND m.profile_id = p.profile_id
     AND m.workload = c.workload AND m.model = c.model
    -- one headline cell per (profile, workload, model) even if a plan had two
    QUALIFY row_number() OVER (PARTITION BY p.sweep_id, p.profile_id, c.workload, c.model
                               ORDER BY m.n DESC NULLS LAST, m.cell_key) = 1
)
SELECT j.sweep_id, j.profile_id, j.workload, j.guide_column, j.model,
       j.claim_low, j.claim_high, j.claim_text,
       j.hosts, j.workers, j.n, j.status,
       j.speedup, j.speedup_ci_low, j.speedup_ci_high, j.ci_level,
       CASE WHEN j.speedup IS NULL OR j.speedup_ci_low IS NULL OR j.speedup_ci_high IS NULL
                 THEN 'not measurable'
            WHEN j.speedup_ci_high < j.claim_low OR j.speedup_ci_low > j.claim_high
                 THEN 'refuted'
            ELSE 'confirmed' END AS verdict,
       CASE WHEN j.speedup IS NULL THEN 'not measurable'
            WHEN j.speedup < j.claim_low THEN 'below'
            WHEN j.speedup > j.claim_high THEN 'above'
            ELSE 'within' END AS median_vs_claim,
       CASE WHEN j.status IS NULL THEN 'not in these sweeps'
            WHEN j.speedup IS NULL THEN coalesce(j.reason, j.status)
            WHEN j.needs_cpus IS NOT NULL AND p.usable_cpus < j.needs_cpus
                 THEN 'needs at least ' || j.needs_cpus || ' CPUs; this profile has '
                      || p.usable_cpus
            WHEN j.status = 'partial' THEN 'some repeats failed: ' || coalesce(j.reason, '')
       END AS note,
       p.usable_cpus, p.cpu_model, p.python_version, p.free_threaded, p.gil_enabled, p.pythons
FROM joined j
LEFT JOIN profiles p USING (sweep_id, profile_id);

-- One line per claim over all sweeps: what was measured where, e.g.
--   "1.90x [1.80-2.00] on 2 usable CPUs (refuted), 0.98x [...] on 1 usable CPU (refuted)".
CREATE OR REPLACE MACRO claim_measure_text(speedup, lo, hi, usable_cpus, free_threaded,
                                           verdict) AS
    CASE WHEN speedup IS NULL THEN 'not measurable'
         ELSE printf('%.2fx [%.2f-%.2f]', speedup, lo, hi) END
    || ' on ' || coalesce(usable_cpus::VARCHAR, '?') || ' usable CPU'
    || CASE WHEN usable_cpus = 1 THEN '' ELSE 's' END
    || CASE WHEN free_threaded THEN ' free-threaded' ELSE '' END
    || ' (' || verdict || ')';

-- claims_summary_of([sweep ids]): the same, over the claims of those sweeps only.
CREATE OR REPLACE MACRO claims_summary_of(sweep_ids) AS TABLE
SELECT workload, guide_column, model, claim_text, claim_low, claim_high,
       count(*) FILTER (WHERE verdict = 'confirmed') AS n_confirmed,
       count(*) FILTER (WHERE verdict = 'refuted') AS n_refuted,
       count(*) FILTER (WHERE verdict = 'not measurable') AS n_not_measurable,
       string_agg(claim_measure_text(speedup, speedup_ci_low, speedup_ci_high, usable_cpus,
                                     free_threaded, verdict),
                  ', ' ORDER BY usable_cpus DESC NULLS LAST, free_threaded, profile_id)
           AS measured
FROM claims
WHERE list_contains(sweep_ids, sweep_id)
GROUP BY ALL;

CREATE OR REPLACE VIEW claims_summary AS
SELECT * FROM claims_summary_of((SELECT coalesce(list(DISTINCT sweep_id), []) FROM claims));
