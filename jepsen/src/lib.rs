//! Chaos harness: workloads, nemeses, checker, report. Filled in by the chaos work.
