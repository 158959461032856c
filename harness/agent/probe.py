"""The host fingerprint: facts read from the host itself, never invented.

Each ``collect_*`` function fills part of one dict (the pyperf
``_collect_metadata`` pattern). A fact that cannot be read is ``None``.
Stdlib only; psutil is used only as a fallback when it happens to be installed.
"""

import glob
import multiprocessing
import os
import platform
import socket
import sys
import sysconfig
import time

FINGERPRINT_KEYS = (
    "hostname", "os", "kernel", "arch", "cpu_model", "logical_cpus", "physical_cores",
    "usable_cpus", "numa_nodes", "numa_cpus", "mem_total_bytes", "python_version",
    "implementation", "free_threaded", "gil_enabled", "executable", "machine_id",
    "boot_id", "start_methods", "default_start_method", "has_interpreter_pool",
    "timer_resolution_s", "loadavg",
)


def _read_text(path):
    """The stripped content of a small text file, or None."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read().strip()
    except OSError:
        return None


def _psutil():
    try:
        import psutil  # noqa: PLC0415 - optional
    except Exception:
        return None
    return psutil


def collect_system(env):
    env["hostname"] = socket.gethostname() or None
    env["os"] = platform.system() or None
    env["kernel"] = platform.release() or None
    env["arch"] = platform.machine() or None


def _cpu_model():
    text = _read_text("/proc/cpuinfo")
    if text:
        for line in text.splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Processor", "cpu model", "uarch"):
                value = " ".join(value.split())
                if value:
                    return value
    return platform.processor() or None


def _physical_cores():
    cores = set()
    for core_path in glob.glob("/sys/devices/system/cpu/cpu[0-9]*/topology/core_id"):
        topo = os.path.dirname(core_path)
        core = _read_text(core_path)
        package = _read_text(os.path.join(topo, "physical_package_id"))
        if core is None:
            continue
        cores.add((package, core))
    if cores:
        return len(cores)
    psutil = _psutil()
    if psutil is not None:
        try:
            count = psutil.cpu_count(logical=False)
        except Exception:
            count = None
        if count:
            return int(count)
    return os.cpu_count()


def collect_cpu(env):
    env["cpu_model"] = _cpu_model()
    env["logical_cpus"] = os.cpu_count()
    env["physical_cores"] = _physical_cores()
    if hasattr(os, "sched_getaffinity"):
        try:
            env["usable_cpus"] = len(os.sched_getaffinity(0))
        except OSError:
            env["usable_cpus"] = None
    else:
        env["usable_cpus"] = None


def _node_number(path):
    name = os.path.basename(path)[len("node"):]
    return int(name) if name.isdigit() else -1


def collect_numa(env):
    nodes = [p for p in glob.glob("/sys/devices/system/node/node[0-9]*")
             if _node_number(p) >= 0]
    nodes.sort(key=_node_number)
    if not nodes:
        env["numa_nodes"] = None
        env["numa_cpus"] = None
        return
    env["numa_nodes"] = len(nodes)
    env["numa_cpus"] = [_read_text(os.path.join(p, "cpulist")) or "" for p in nodes]


def collect_memory(env):
    total = None
    text = _read_text("/proc/meminfo")
    if text:
        for line in text.splitlines():
            if line.startswith("MemTotal:"):
                parts = line.split()
                if len(parts) >= 2 and parts[1].isdigit():
                    unit = parts[2].lower() if len(parts) > 2 else "kb"
                    total = int(parts[1]) * (1024 if unit == "kb" else 1)
                break
    if total is None:
        psutil = _psutil()
        if psutil is not None:
            try:
                total = int(psutil.virtual_memory().total)
            except Exception:
                total = None
    env["mem_total_bytes"] = total


def collect_python(env):
    env["python_version"] = platform.python_version()
    env["implementation"] = platform.python_implementation()
    env["free_threaded"] = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
    is_gil_enabled = getattr(sys, "_is_gil_enabled", None)
    env["gil_enabled"] = bool(is_gil_enabled()) if is_gil_enabled is not None else True
    env["executable"] = sys.executable or None
    env["start_methods"] = list(multiprocessing.get_all_start_methods())
    try:
        env["default_start_method"] = multiprocessing.get_start_method(allow_none=False)
    except Exception:
        env["default_start_method"] = None
    import concurrent.futures  # noqa: PLC0415

    env["has_interpreter_pool"] = hasattr(concurrent.futures, "InterpreterPoolExecutor")
    env["timer_resolution_s"] = float(time.get_clock_info("perf_counter").resolution)


def collect_identity(env):
    machine_id = None
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        machine_id = _read_text(path)
        if machine_id:
            break
    env["machine_id"] = machine_id or None
    env["boot_id"] = _read_text("/proc/sys/kernel/random/boot_id") or None


def collect_load(env):
    try:
        env["loadavg"] = [float(x) for x in os.getloadavg()]
    except (AttributeError, OSError):
        env["loadavg"] = None


COLLECTORS = (collect_system, collect_cpu, collect_numa, collect_memory, collect_python,
              collect_identity, collect_load)


def fingerprint():
    """The ``env`` dict: exactly FINGERPRINT_KEYS, JSON-serialisable."""
    env = {}
    for collect in COLLECTORS:
        try:
            collect(env)
        except Exception as exc:  # a collector must never kill the agent
            sys.stderr.write("harness agent: %s failed: %s\n" % (collect.__name__, exc))
    return {key: env.get(key) for key in FINGERPRINT_KEYS}
