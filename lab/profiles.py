"""Named parameter sets for `make report`. A notebook receives the values of the parameters
it declares in its `parameters` cell; `--set name=value` overrides one of them for a run."""

COMMON = {
    "instances_per_tier": 2,
    "workers_per_instance": 2,
}

PROFILES = {
    # minutes, for CI and a first look: short loads, one configuration where the full profile
    # compares several; every notebook says what it left out
    "quick": {**COMMON, "profile": "quick", "wrk_seconds": 2, "fault_seconds": 2,
              "fuzz_examples": 20,
              # the site's unit tests, not the lab's; browser tests: one per user journey
              "lab_unit_tests": False, "test_marker": "smoke",
              # load balancing: one scenario of each kind, the rate limit's burst only
              "distribution_scenarios": ["roundrobin_skewed", "leastconn_skewed"],
              "failover_balancers": ["resilient"], "wrk_rounds": 1,
              "rate_limit_recovery": False,
              # hosting: the laptop and the VM only (the network and the CPU not separated)
              "hosting_step_users": 20, "hosting_max_users": 40, "hosting_step_seconds": 3,
              "hosting_rounds": 1, "hosting_scenarios": "laptop,vm",
              # reliability: one instance killed, Redis, the entity tier; no PostgreSQL stack,
              # fuzzing or in-process security suite (`make test` runs both)
              "faults": ["redis", "kill_entity1", "entity_tier"],
              "database_down_postgres": False, "in_process_suites": False},
    # the write-up's figures: long enough steps for stable percentiles, every experiment
    "full": {**COMMON, "profile": "full", "wrk_seconds": 8, "fault_seconds": 10,
             "fuzz_examples": 100,
             "lab_unit_tests": True, "test_marker": "",
             "distribution_scenarios": "all", "failover_balancers": "all", "wrk_rounds": 2,
             "rate_limit_recovery": True,
             "hosting_step_users": 40, "hosting_max_users": 120, "hosting_step_seconds": 9,
             "hosting_rounds": 1, "hosting_scenarios": "laptop,laptop+net,vm-local,vm",
             "faults": "all", "database_down_postgres": True, "in_process_suites": True},
}


def chosen(value, known, what="key"):
    """The keys a subset parameter names (`faults`, `failover_balancers`, ...), in the order of
    `known`: "all" (or nothing) for every one, else a list of keys or one string of them
    separated by commas."""
    known = list(known)
    if value is None or value == "" or value == "all":
        return known
    wanted = [part.strip() for part in value.split(",")] if isinstance(value, str) else list(value)
    unknown = [key for key in wanted if key not in known]
    if unknown:
        raise ValueError(f"unknown {what} {', '.join(map(str, unknown))}; "
                         f"choose from {', '.join(known)} or all")
    return [key for key in known if key in wanted]


def not_run(profile, what):
    """The line a notebook shows where its profile leaves `what` out."""
    return f"*Left out in the {profile} profile (the full profile runs every part): {what}.*"


def parameters(profile, overrides=()):
    """The profile's values with `name=value` overrides; values are parsed as JSON when they
    can be (numbers, booleans) and kept as strings otherwise."""
    import json

    if profile not in PROFILES:
        raise SystemExit(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    values = dict(PROFILES[profile])
    for override in overrides:
        name, sep, raw = override.partition("=")
        if not sep or not name:
            raise SystemExit(f"--set takes name=value, not {override!r}")
        try:
            values[name] = json.loads(raw)
        except ValueError:
            values[name] = raw
    return values
