"""A sweep: every selected host × interpreter runs its cells; results land as they finish.

- :mod:`harness.sweep.options` -- what a sweep is asked (``SweepOptions``, checked in
  its constructor), what it answers (``SweepResult``, ``Failure``) and what a progress
  display is told (``Observer``).
- :mod:`harness.sweep.rows` -- the warehouse rows of a finished cell and of an environment.
- :mod:`harness.sweep.recorder` -- ``EnvRecorder``: one environment's agent messages
  turned into committed cells, attempts and failures.
- :mod:`harness.sweep.context` -- ``Sweep``: one sweep's plan, warehouse and failures,
  and what an engine asks of it (plan an environment, record a failure, stop).
- :mod:`harness.sweep.run` -- ``run_sweep``: a sweep from start to end, with Ctrl-C and
  SIGTERM stopping every host cleanly.

The engines that drive the hosts (ssh, ansible) are :mod:`harness.engines`.
"""
