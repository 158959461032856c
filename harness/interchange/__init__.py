"""Other tools' result files, both ways: a sweep written as pyperf's JSON
(:mod:`harness.interchange.pyperf_export`) and a pyperf file stored as a sweep of its
own (:mod:`harness.interchange.pyperf_import`); the file format itself, read and
written with the standard library alone, is :mod:`harness.interchange.pyperf_file`.
"""
