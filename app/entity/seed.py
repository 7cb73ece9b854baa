"""Deterministic, realistic seed data: the same seed always gives the same users and listings,
so load tests and screenshots are comparable between runs."""
import random
from datetime import datetime, timedelta, timezone as dt_timezone
from decimal import Decimal

from django.contrib.auth.hashers import make_password
from django.db import transaction
from faker import Faker

from .models import Listing, User

# Seeded users all get this password (hashed once: hashing 200 passwords would take a minute).
SEED_PASSWORD = "marketplace-demo"
# Dates are laid out before a fixed moment, so the data does not depend on when it was made.
ANCHOR = datetime(2026, 11, 1, 12, 0, tzinfo=dt_timezone.utc)

# category: (items, price range in dollars)
CATALOGUE = {
    "furniture": (["oak desk", "armchair", "bookshelf", "dining table", "sofa", "bed frame",
                   "floor lamp", "office chair", "coffee table", "wardrobe"], (20, 900)),
    "bikes": (["road bike", "mountain bike", "city bike", "kids' bike", "e-bike",
               "bike helmet", "bike rack"], (15, 2500)),
    "electronics": (["laptop", "monitor", "mechanical keyboard", "headphones", "tablet",
                     "camera", "turntable", "speaker", "game console", "router"], (10, 1800)),
    "books": (["textbook", "cookbook", "novel collection", "atlas", "comic box set",
               "poetry anthology"], (3, 120)),
    "kitchen": (["espresso machine", "stand mixer", "cast iron pan", "knife set",
                 "rice cooker", "blender", "kettle"], (8, 600)),
    "sports": (["tennis racket", "climbing shoes", "yoga mat", "kayak paddle", "snowboard",
                "running shoes", "dumbbell set"], (5, 700)),
    "music": (["acoustic guitar", "digital piano", "violin", "ukulele", "drum pad",
               "guitar amplifier"], (25, 1500)),
}
ADJECTIVES = ["Vintage", "Barely used", "Compact", "Solid", "Classic", "Like-new", "Sturdy",
              "Refurbished", "Handmade", "Lightweight", "Well-loved", "Modern"]
CONDITIONS = ["in excellent condition", "in good working order", "with light signs of use",
              "with a few scratches but fully working", "that has been kept indoors and cleaned"]
REASONS = ["Moving out and can't take it with me.", "Upgraded to a newer one.",
           "Rarely used since I bought it.", "Clearing out the garage.",
           "Gift that never quite fit my space."]


def _listing_text(rng, fake):
    category = rng.choice(list(CATALOGUE))
    items, (low, high) = CATALOGUE[category]
    item = rng.choice(items)
    title = f"{rng.choice(ADJECTIVES)} {item}"
    description = (f"{title} {rng.choice(CONDITIONS)}. {rng.choice(REASONS)} "
                   f"Pick up in {fake.city()} or I can meet nearby. {fake.sentence(nb_words=10)}")
    # prices skew low within the category's range, as real second-hand prices do
    price = low + (high - low) * rng.random() ** 2.5
    return title, description, Decimal(f"{price:.2f}").quantize(Decimal("0.01"))


@transaction.atomic
def seed(users=200, listings=5000, seed=42, progress=print):
    rng = random.Random(seed)
    fake = Faker("en_US")
    fake.seed_instance(seed)
    password = make_password(SEED_PASSWORD)

    people, usernames = [], set()
    while len(people) < users:
        name = fake.unique.user_name()[:30]
        if len(name) < 3 or name.lower() in usernames:
            continue
        usernames.add(name.lower())
        first, last = fake.first_name(), fake.last_name()
        people.append(User(username=name, email=f"{name}@example.com",
                           display_name=f"{first} {last}", bio=fake.sentence(nb_words=12),
                           password=password,
                           date_joined=ANCHOR - timedelta(days=rng.randint(30, 900))))
    User.objects.bulk_create(people, batch_size=500)
    people = list(User.objects.order_by("id"))
    progress(f"seeded {len(people)} users")

    # a few very active sellers, many occasional ones
    weights = [1 / (rank + 1) ** 0.8 for rank in range(len(people))]
    batch = []
    for index in range(listings):
        title, description, price = _listing_text(rng, fake)
        seller = rng.choices(people, weights)[0]
        created = ANCHOR - timedelta(minutes=rng.randint(0, 60 * 24 * 365))
        status = rng.choices(["active", "sold", "withdrawn"], [90, 8, 2])[0]
        batch.append(Listing(seller=seller, title=title, description=description, price=price,
                             status=status, created_at=created,
                             view_count=int(rng.paretovariate(1.2) * 3)))
        if len(batch) == 1000 or index == listings - 1:
            Listing.objects.bulk_create(batch, batch_size=1000)
            batch = []
            progress(f"seeded {index + 1}/{listings} listings")
    return len(people), listings
