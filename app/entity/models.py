"""The marketplace's data. Only the entity tier imports this module."""
import hashlib
import secrets
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.core.validators import MaxValueValidator, MinLengthValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone

MAX_PRICE = Decimal("1000000.00")
USERNAME_PATTERN = r"^[A-Za-z0-9_.-]+$"


class User(models.Model):
    """A member of the marketplace: a buyer and possibly a seller."""

    username = models.CharField(
        max_length=30, unique=True,
        validators=[MinLengthValidator(3), RegexValidator(USERNAME_PATTERN)])
    email = models.EmailField(max_length=254)
    display_name = models.CharField(max_length=60, blank=True)
    bio = models.TextField(max_length=500, blank=True)
    password = models.CharField(max_length=128)  # a Django hasher string, never the password
    date_joined = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return self.username

    def set_password(self, raw_password):
        self.password = make_password(raw_password)

    def check_password(self, raw_password):
        # check_password upgrades nothing here (no setter): hashes are rotated on next set.
        return check_password(raw_password, self.password)


class Listing(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active"
        SOLD = "sold"
        WITHDRAWN = "withdrawn"

    seller = models.ForeignKey(User, on_delete=models.CASCADE, related_name="listings")
    title = models.CharField(max_length=120, validators=[MinLengthValidator(3)])
    description = models.TextField(max_length=5000, blank=True)
    price = models.DecimalField(
        max_digits=9, decimal_places=2,
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(MAX_PRICE)])
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    view_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # the home page's two lists and the seller page
            models.Index(fields=["status", "-created_at"], name="listing_newest"),
            models.Index(fields=["status", "-view_count"], name="listing_popular"),
            models.Index(fields=["seller", "-created_at"], name="listing_by_seller"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(price__gte=0), name="listing_price_not_negative"),
        ]

    def __str__(self):
        return self.title


def digest(token):
    """Only this digest is stored: a leaked table gives no usable token. A fast hash is enough
    because the token has 256 random bits (nothing to brute-force, unlike a password)."""
    return hashlib.sha256(token.encode()).hexdigest()


class AuthenticatorQuerySet(models.QuerySet):
    def valid(self):
        return self.filter(revoked_at__isnull=True, expires_at__gt=timezone.now())

    def for_token(self, token):
        return self.filter(token_digest=digest(token))


class Authenticator(models.Model):
    """A log-in session: the bearer of the token acts as `user` until it expires or is revoked."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="authenticators")
    token_digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = AuthenticatorQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    @classmethod
    def issue(cls, user):
        """Creates an authenticator and returns it with its token (the only time it exists)."""
        token = secrets.token_urlsafe(32)  # 32 bytes = 256 bits
        now = timezone.now()
        authenticator = cls.objects.create(
            user=user, token_digest=digest(token), created_at=now,
            expires_at=now + timedelta(hours=settings.AUTHENTICATOR_LIFETIME_HOURS))
        return authenticator, token

    @property
    def revoked(self):
        return self.revoked_at is not None
