"""The web tier's forms. They check what a person can fix before a round trip; the experience
and entity tiers stay the authority (password strength, unique usernames), and their field
errors come back onto the same form (add_api_errors)."""
from decimal import Decimal

from django import forms
from django.core.validators import RegexValidator

USERNAME_HELP = "3 to 30 letters, digits, dots, dashes or underscores."
MAX_PRICE = Decimal("1000000")


def add_api_errors(form, error):
    """Puts an upstream ApiError on the form: each field's messages under that field, any
    field the form does not have (and an error without fields) above the form."""
    fields = error.fields or {}
    if not fields:
        form.add_error(None, error.message)
    for name, messages in fields.items():
        target = name if name in form.fields else None
        for message in messages:
            form.add_error(target, message)


class SearchForm(forms.Form):
    q = forms.CharField(required=False, max_length=100, strip=True)
    page = forms.IntegerField(required=False, min_value=1, max_value=10_000)


class PageForm(forms.Form):
    page = forms.IntegerField(required=False, min_value=1, max_value=10_000)


def page_number(data):
    """The ?page= of a request; anything that is not a sensible page number means page 1."""
    form = PageForm(data)
    return (form.cleaned_data.get("page") if form.is_valid() else None) or 1


class SignupForm(forms.Form):
    username = forms.CharField(
        min_length=3, max_length=30, help_text=USERNAME_HELP,
        validators=[RegexValidator(r"^[A-Za-z0-9_.-]+$",
                                   "Use only letters, digits, dots, dashes or underscores.")],
        widget=forms.TextInput(attrs={"autocomplete": "username", "autofocus": True}))
    email = forms.EmailField(max_length=254,
                             widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    password = forms.CharField(
        max_length=128, strip=False, help_text="At least 8 characters; not a common password.",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))
    password_confirm = forms.CharField(
        label="Confirm password", max_length=128, strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))

    def clean(self):
        data = super().clean()
        password, confirm = data.get("password"), data.get("password_confirm")
        if password and confirm and password != confirm:
            self.add_error("password_confirm", "The two passwords do not match.")
        return data


class LoginForm(forms.Form):
    username = forms.CharField(max_length=150, widget=forms.TextInput(
        attrs={"autocomplete": "username", "autofocus": True}))
    password = forms.CharField(max_length=128, strip=False, widget=forms.PasswordInput(
        attrs={"autocomplete": "current-password"}))


class ListingForm(forms.Form):
    title = forms.CharField(
        min_length=3, max_length=120,
        widget=forms.TextInput(attrs={"placeholder": "e.g. Oak desk with two drawers",
                                      "autofocus": True}))
    price = forms.DecimalField(
        min_value=Decimal("0"), max_value=MAX_PRICE, max_digits=9, decimal_places=2,
        help_text="In dollars, up to $1,000,000.",
        error_messages={"invalid": "Enter a price as a number, like 25 or 19.99."},
        # a text box, not type=number: the browser would silently drop "abc" and hide our
        # message, and a number box's spinner is no use for prices
        widget=forms.TextInput(attrs={"inputmode": "decimal", "placeholder": "0.00"}))
    description = forms.CharField(
        required=False, max_length=5000,
        help_text="Condition, size, where to pick it up. Up to 5,000 characters.",
        widget=forms.Textarea(attrs={"rows": 7}))
