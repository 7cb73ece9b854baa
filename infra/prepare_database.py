"""Bring the database up to date before the entity tier starts: apply missing migrations, then
seed when there are no users yet. One Django start for both, instead of `manage.py migrate`
and `manage.py seed` (about a second each), because this is on the path of every `up`.

    python infra/prepare_database.py --users 200 --listings 5000 --seed 42
(with the entity tier's LAB_ environment and app/ on PYTHONPATH; it imports nothing from the
infra package, so the app's container image runs it too)"""
import argparse
import os
import time


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--listings", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketplace.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    started = time.monotonic()
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if plan:
        print(f"applying {len(plan)} migrations", flush=True)
        call_command("migrate", verbosity=0, interactive=False)
    from entity.models import Listing, User

    seeded = not User.objects.exists()
    if seeded:
        call_command("seed", users=args.users, listings=args.listings, seed=args.seed)
    # the last line is the summary `python -m infra up` shows
    print(f"{User.objects.count()} users, {Listing.objects.count()} listings"
          f"{' (seeded now)' if seeded else ''}"
          f"{f', {len(plan)} migrations applied' if plan else ''}"
          f" in {time.monotonic() - started:.1f} s", flush=True)


if __name__ == "__main__":
    main()
