"""manage.py seed: fill an empty database with deterministic, realistic users and listings."""
from django.core.management.base import BaseCommand

from entity import seed as seeding
from entity.models import User


class Command(BaseCommand):
    help = "Fill an empty database with deterministic seed data (does nothing if it has users)."

    def add_arguments(self, parser):
        parser.add_argument("--users", type=int, default=200)
        parser.add_argument("--listings", type=int, default=5000)
        parser.add_argument("--seed", type=int, default=42, help="same seed, same data")

    def handle(self, *args, **options):
        existing = User.objects.count()
        if existing:
            self.stdout.write(f"the database already has {existing} users: not seeding")
            return
        users, listings = seeding.seed(options["users"], options["listings"], options["seed"],
                                       progress=self.stdout.write)
        self.stdout.write(self.style.SUCCESS(
            f"seeded {users} users and {listings} listings (seed {options['seed']}); "
            f"every seeded user's password is {seeding.SEED_PASSWORD!r}"))
