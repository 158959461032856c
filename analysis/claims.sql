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
-- as the values that round to it, [0.95, 1.05]. bound: what limits the workload
-- (cpu, network, disk), which sets the cap of a model's speedup (speedup_cap below).
CREATE OR REPLACE VIEW guide_table AS
SELECT * FROM (VALUES
    ('cpu_bound',        'Sequential',  'sequential',        1.0,  1.0,  '1.0x',                     'cpu'),
    ('cpu_bound',        'ThreadPool',  'threads',           0.95, 1.05, '1.0x (GIL)',               'cpu'),
    ('cpu_bound',        'ProcessPool', 'processes',         7.0,  8.0,  '7-8x',                     'cpu'),
    ('cpu_bound',        'ProcessPool', 'mp_pool',           7.0,  8.0,  '7-8x',                     'cpu'),
    ('cpu_bound',        'asyncio',     'asyncio',           0.95, 1.05, '1.0x',                     'cpu'),
    ('net_low_latency',  'Sequential',  'sequential',        1.0,  1.0,  '1.0x',                     'network'),
    ('net_low_latency',  'ThreadPool',  'threads',           3.0,  5.0,  '3-5x',                     'network'),
    ('net_low_latency',  'ProcessPool', 'processes',         2.0,  4.0,  '2-4x',                     'network'),
    ('net_low_latency',  'ProcessPool', 'mp_pool',           2.0,  4.0,  '2-4x',                     'network'),
    ('net_low_latency',  'asyncio',     'asyncio',           5.0,  10.0, '5-10x',                    'network'),
    ('net_high_latency', 'Sequential',  'sequential',        1.0,  1.0,  '1.0x',                     'network'),
    ('net_high_latency', 'ThreadPool',  'threads',           8.0,  15.0, '8-15x',                    'network'),
    ('net_high_latency', 'ProcessPool', 'processes',         6.0,  12.0, '6-12x',                    'network'),
    ('net_high_latency', 'ProcessPool', 'mp_pool',           6.0,  12.0, '6-12x',                    'network'),
    ('net_high_latency', 'asyncio',     'asyncio',           15.0, 50.0, '15-50x',                   'network'),
    ('disk_io',          'Sequential',  'sequential',        1.0,  1.0,  '1.0x',                     'disk'),
    ('disk_io',          'ThreadPool',  'threads',           2.0,  3.0,  '2-3x',                     'disk'),
    ('disk_io',          'ProcessPool', 'processes',         1.0,  2.0,  '1-2x',                     'disk'),
    ('disk_io',          'ProcessPool', 'mp_pool',           1.0,  2.0,  '1-2x',                     'disk'),
    ('disk_io',          'asyncio',     'asyncio_to_thread', 1.0,  2.0,  '1.0x-2.0x (via to_thread)', 'disk')
) AS t(workload, guide_column, model, claim_low, claim_high, claim_text, bound);

-- The equivalence tolerance of a claim, relative: a measured speedup within
-- [claim_low / (1 + t), claim_high * (1 + t)] counts as the claim's. 10%: the guide's
-- numbers are round ("7-8x", "1.0x") and it calls them representative, and 10% is about
-- the spread of one speedup between quiet runs of one machine (benchmarks/RESULTS.md:
-- paired overhead intervals +-2-6%), so a tighter band would test the rounding rather
-- than the claim, and a looser one would let a 1.2x "confirm" 1.0x.
CREATE OR REPLACE MACRO claim_tolerance() AS 0.10;

-- The largest speedup a model can reach on a cell by construction (NULL: no cap known).
--   sequential: 1.
--   cpu: the coroutines of asyncio run the CPU work one at a time on the loop's thread:
--        1. Every other model runs at most min(workers, usable CPUs, tasks) tasks at
--        once (threads only on a free-threaded build, but the cap is what the cell
--        allows, not what the GIL does).
--   network, disk: at most min(workers, tasks) requests are in flight at once, for
--        threads, processes, mp_pool and interpreters (the pool size), for asyncio (the
--        agent's semaphore of `workers`; workers = tasks by default) and for
--        asyncio_to_thread: the agent replaces the loop's default executor by one of
--        `workers` threads (harness/agent/models.py), so the default pool size
--        min(32, cpus + 4) does not apply. Disk asyncio does blocking I/O inside its
--        coroutines: 1.
-- least() skips NULLs: a fact that is missing (tasks not in params) does not cap.
CREATE OR REPLACE MACRO speedup_cap(bound, model, workers, tasks, usable_cpus) AS
    CASE WHEN model = 'sequential' THEN 1
         WHEN bound = 'cpu' AND model = 'asyncio' THEN 1
         WHEN bound = 'cpu' THEN least(workers, usable_cpus, tasks)
         WHEN bound = 'disk' AND model = 'asyncio' THEN 1
         ELSE least(workers, tasks) END;

-- One row per (sweep, profile, claim): the claims are every guide_table row but the
-- sequential baseline (1.0x by definition). The interval [speedup_ci_low,
-- speedup_ci_high] is profile_matrix's (paired: the order-statistic interval of the
-- median of per-block ratios when the cells ran in blocks, else the unpaired
-- Bonferroni interval); ci_level states its real confidence. accept_low/accept_high is
-- the claimed range widened by claim_tolerance(); speedup_method and n_blocks say which
-- interval it is. verdict, the first that holds:
--   not measurable     no such cell in the profile, or it did not run (n/a, failed,
--                      timeout) or has no sequential baseline; note says which
--   not testable here  the cell cannot reach the claim by construction: cap <
--                      claim_low (cap = speedup_cap(...)). A cap between accept_low and
--                      claim_low could only "confirm" through the tolerance, which is
--                      no test, so it counts as not testable. The note names the cap,
--                      the limit(s) below claim_low and the size that would test the
--                      claim ("needs >= 15 tasks", "needs >= 6 workers").
--   confirmed          the interval lies inside [accept_low, accept_high] (an
--                      equivalence test: a wide interval confirms nothing)
--   refuted            the interval lies wholly outside [claim_low, claim_high] (the
--                      tolerance widens what confirms, not what refutes: an interval
--                      below claim_low that reaches under accept_low is refuted)
--   inconclusive       neither: the interval is too wide to tell. needed_rel_width is
--                      the relative width (hi - lo) / speedup an interval centred on
--                      the measured speedup would need to settle it: to confirm when
--                      the speedup lies in [accept_low, accept_high] (it must fit in),
--                      else to refute (it must clear the claimed range); needed_for
--                      says which.
-- A cap at or above claim_low but below claim_high / (1 + tolerance) leaves the claim
-- testable in part (the speedup cannot exceed the cap, so it cannot be refuted from
-- above): the note says so and what would test it all.
CREATE OR REPLACE VIEW claims AS
WITH claim AS (
    SELECT * FROM guide_table WHERE model <> 'sequential'
), prof AS (
    SELECT DISTINCT sweep_id, profile_id FROM profile_matrix
), joined AS (
    SELECT p.sweep_id, p.profile_id, c.*,
           m.hosts, m.workers, TRY_CAST(m.params->>'tasks' AS BIGINT) AS tasks,
           m.n, m.status, m.reason, m.speedup, m.speedup_ci_low,
           m.speedup_ci_high, m.speedup_ci_level AS ci_level, m.speedup_method, m.n_blocks
    FROM prof p
    CROSS JOIN claim c
    LEFT JOIN profile_matrix m
      ON m.sweep_id = p.sweep_id AND m.profile_id = p.profile_id
     AND m.workload = c.workload AND m.model = c.model
    -- one headline cell per (profile, workload, model) even if a plan had two
    QUALIFY row_number() OVER (PARTITION BY p.sweep_id, p.profile_id, c.workload, c.model
                               ORDER BY m.n DESC NULLS LAST, m.cell_key) = 1
), capped AS (
    SELECT j.*, p.usable_cpus, p.cpu_model, p.python_version, p.free_threaded,
           p.gil_enabled, p.pythons,
           claim_tolerance() AS tolerance,
           j.claim_low / (1 + claim_tolerance()) AS accept_low,
           j.claim_high * (1 + claim_tolerance()) AS accept_high,
           CASE WHEN j.status IS NOT NULL
                THEN speedup_cap(j.bound, j.model, j.workers, j.tasks, p.usable_cpus) END
               AS cap,
           ceil(j.claim_low)::BIGINT AS need_low,
           ceil(j.claim_high)::BIGINT AS need_high,
           (j.speedup_ci_high - j.speedup_ci_low) / nullif(j.speedup, 0) AS rel_width
    FROM joined j
    LEFT JOIN profiles p USING (sweep_id, profile_id)
), judged AS (
    SELECT *,
           CASE WHEN speedup IS NULL OR speedup_ci_low IS NULL OR speedup_ci_high IS NULL
                     THEN 'not measurable'
                WHEN cap < claim_low THEN 'not testable here'
                WHEN speedup_ci_low >= accept_low AND speedup_ci_high <= accept_high
                     THEN 'confirmed'
                WHEN speedup_ci_high < claim_low OR speedup_ci_low > claim_high
                     THEN 'refuted'
                ELSE 'inconclusive' END AS verdict,
           -- what would settle an inconclusive claim: an interval centred on the speedup
           -- that fits in the widened range (confirm) or clears the claimed one (refute)
           CASE WHEN speedup BETWEEN accept_low AND accept_high
                THEN 'confirm' ELSE 'refute' END AS settle_by,
           CASE WHEN speedup BETWEEN accept_low AND accept_high
                THEN 2 * least(speedup - accept_low, accept_high - speedup)
                ELSE 2 * least(abs(speedup - claim_low), abs(speedup - claim_high))
           END / nullif(speedup, 0) AS settle_width,
           -- which limits of the cap fall short of the claim: the size that would test it
           concat_ws(', ',
               CASE WHEN bound = 'cpu' AND model <> 'asyncio' AND usable_cpus < claim_low
                    THEN '>= ' || need_low || ' usable CPUs (this profile has '
                         || usable_cpus || ')' END,
               CASE WHEN workers < claim_low AND NOT (model = 'asyncio'
                                                      AND bound IN ('cpu', 'disk'))
                    THEN '>= ' || need_low || ' workers' END,
               CASE WHEN tasks < claim_low AND NOT (model = 'asyncio'
                                                    AND bound IN ('cpu', 'disk'))
                    THEN '>= ' || need_low || ' tasks' END) AS needs_low,
           concat_ws(', ',
               CASE WHEN bound = 'cpu' AND model <> 'asyncio' AND usable_cpus < claim_high
                    THEN '>= ' || need_high || ' usable CPUs' END,
               CASE WHEN workers < claim_high THEN '>= ' || need_high || ' workers' END,
               CASE WHEN tasks < claim_high THEN '>= ' || need_high || ' tasks' END)
               AS needs_high,
           CASE WHEN model = 'asyncio' AND bound IN ('cpu', 'disk')
                THEN 'cap 1x (one thread runs the tasks)'
                ELSE 'cap ' || cap || 'x = min('
                     || concat_ws(', ', workers || ' workers',
                                  CASE WHEN bound = 'cpu' THEN usable_cpus || ' usable CPUs' END,
                                  tasks || ' tasks') || ')' END AS cap_text
    FROM capped
)
SELECT sweep_id, profile_id, workload, guide_column, model,
       claim_low, claim_high, claim_text,
       hosts, workers, tasks, n, status,
       speedup, speedup_ci_low, speedup_ci_high, ci_level, speedup_method, n_blocks,
       verdict,
       CASE WHEN speedup IS NULL THEN 'not measurable'
            WHEN speedup < claim_low THEN 'below'
            WHEN speedup > claim_high THEN 'above'
            ELSE 'within' END AS median_vs_claim,
       CASE WHEN status IS NULL THEN 'not in these sweeps'
            WHEN speedup IS NULL THEN coalesce(reason, status)
            WHEN verdict = 'not testable here'
                 THEN cap_text || ' < ' || claim_text || CASE WHEN needs_low <> ''
                      THEN '; needs ' || needs_low ELSE '' END
            ELSE nullif(concat_ws('; ',
                CASE WHEN verdict = 'inconclusive'
                     THEN printf('interval width %.0f%% of the median; %s needs at most %.0f%%',
                                 100 * rel_width,
                                 CASE settle_by WHEN 'confirm' THEN 'confirming'
                                                ELSE 'refuting' END,
                                 100 * settle_width) END,
                CASE WHEN verdict = 'confirmed' AND (speedup_ci_low < claim_low
                                                     OR speedup_ci_high > claim_high)
                     THEN 'within the ' || printf('%.0f', 100 * tolerance)
                          || '% tolerance, not the literal range' END,
                CASE WHEN cap * (1 + tolerance) < claim_high
                     THEN cap_text || ': only up to ' || cap
                          || 'x of the claim is reachable'
                          || CASE WHEN needs_high <> '' THEN '; ' || needs_high
                                       || ' would test all of it' ELSE '' END END,
                CASE WHEN status = 'partial'
                     THEN 'some repeats failed: ' || coalesce(reason, '') END), '')
       END AS note,
       tolerance, accept_low, accept_high, cap, rel_width,
       CASE WHEN verdict = 'inconclusive' THEN settle_width END AS needed_rel_width,
       CASE WHEN verdict = 'inconclusive' THEN settle_by END AS needed_for,
       usable_cpus, cpu_model, python_version, free_threaded, gil_enabled, pythons
FROM judged;

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

-- claims_summary_of([sweep ids]): the same, over the claims of those sweeps only: how
-- often each verdict, and what was measured where.
CREATE OR REPLACE MACRO claims_summary_of(sweep_ids) AS TABLE
SELECT workload, guide_column, model, claim_text, claim_low, claim_high,
       count(*) FILTER (WHERE verdict = 'confirmed') AS n_confirmed,
       count(*) FILTER (WHERE verdict = 'refuted') AS n_refuted,
       count(*) FILTER (WHERE verdict = 'inconclusive') AS n_inconclusive,
       count(*) FILTER (WHERE verdict = 'not testable here') AS n_not_testable,
       count(*) FILTER (WHERE verdict = 'not measurable') AS n_not_measurable,
       string_agg(claim_measure_text(speedup, speedup_ci_low, speedup_ci_high, usable_cpus,
                                     free_threaded, verdict),
                  ', ' ORDER BY usable_cpus DESC NULLS LAST, free_threaded, profile_id, sweep_id)
           AS measured
FROM claims
WHERE list_contains(sweep_ids, sweep_id)
GROUP BY ALL;

CREATE OR REPLACE VIEW claims_summary AS
SELECT * FROM claims_summary_of((SELECT coalesce(list(DISTINCT sweep_id), []) FROM claims));
