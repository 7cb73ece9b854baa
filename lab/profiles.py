"""Named parameter sets for `make report`. A notebook receives the values of the parameters
it declares in its `parameters` cell; `--set name=value` overrides one of them for a run."""

COMMON = {
    "instances_per_tier": 2,
    "workers_per_instance": 2,
}

PROFILES = {
    # minutes, for CI and a first look: short load steps, fewer configurations
    "quick": {**COMMON, "profile": "quick", "load_step_seconds": 4, "load_max_users": 40,
              "load_step_users": 10, "wrk_seconds": 3, "fault_seconds": 6,
              "benchmark_rounds": 1, "hosting_rounds": 1, "fuzz_examples": 60,
              "test_marker": "smoke"},
    # the write-up's figures: long enough steps for stable percentiles
    "full": {**COMMON, "profile": "full", "load_step_seconds": 10, "load_max_users": 120,
             "load_step_users": 20, "wrk_seconds": 8, "fault_seconds": 15,
             "benchmark_rounds": 3, "hosting_rounds": 2, "fuzz_examples": 200,
             "test_marker": ""},
}


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
