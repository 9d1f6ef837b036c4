"""The team page (/app/team: members and roles, invitations, leave), the account switcher and
the invitation link (/invite/<secret>). Who may do what: ``accounts.permissions``; the writes:
``accounts.team``."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts import acting as tenancy
from accounts import selectors, team
from accounts.models import Account, Invitation, Membership, Role
from shared.auth import Acting, acting_of

ROLE_CHOICES = [(r.value, r.label) for r in team.INVITABLE_ROLES]


class InviteForm(forms.Form):
    email = forms.EmailField(max_length=Invitation.EMAIL_MAX_LENGTH)
    role = forms.ChoiceField(choices=ROLE_CHOICES, initial=Role.MEMBER)


class JoinForm(forms.Form):
    """Sign-up from an invitation: the email is the invitation's."""

    password = forms.CharField(
        min_length=8,
        max_length=128,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="At least 8 characters, not a common password.",
    )


def _acting(request: HttpRequest) -> Acting:
    acting = acting_of(request)
    assert acting is not None  # login_required and the middleware resolved it
    return acting


@login_required
def team_page(request: HttpRequest) -> HttpResponse:
    acting = _acting(request)
    can_manage = acting.role in (Role.ADMIN, Role.OWNER)
    context = {
        "acting": acting,
        "can_manage": can_manage,
        "members": selectors.member_list(account_id=acting.account_id),
        "invitations": selectors.pending_invitations(account_id=acting.account_id)
        if can_manage
        else [],
        "form": InviteForm(),
        "role_choices": ROLE_CHOICES,
        "max_pending": team.MAX_PENDING_INVITATIONS,
    }
    return render(request, "pages/team.html", context)


@login_required
@require_POST
def team_invite(request: HttpRequest) -> HttpResponseRedirect:
    acting = _acting(request)
    form = InviteForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Enter an email address and choose a role.")
        return redirect("pages:team")
    try:
        team.invite(
            account=Account.objects.get(pk=acting.account_id),
            email=form.cleaned_data["email"],
            role=form.cleaned_data["role"],
            invited_by=acting.user,
        )
    except team.TeamError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Invitation sent to {form.cleaned_data['email'].lower()}.")
    return redirect("pages:team")


@login_required
@require_POST
def team_invitation_revoke(request: HttpRequest, invitation_id: int) -> HttpResponseRedirect:
    if not team.revoke_invitation(
        account_id=_acting(request).account_id, invitation_id=invitation_id
    ):
        raise Http404("No such pending invitation in this account.")
    messages.success(request, "Invitation revoked.")
    return redirect("pages:team")


@login_required
@require_POST
def team_member_role(request: HttpRequest, member_id: int) -> HttpResponseRedirect:
    try:
        changed = team.change_role(
            account_id=_acting(request).account_id,
            membership_id=member_id,
            role=request.POST.get("role", "")[:16],
        )
    except team.NoSuchMember as exc:
        raise Http404(str(exc)) from exc
    except team.TeamError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Role changed to {changed.role}.")
    return redirect("pages:team")


@login_required
@require_POST
def team_member_remove(request: HttpRequest, member_id: int) -> HttpResponseRedirect:
    try:
        team.remove_member(account_id=_acting(request).account_id, membership_id=member_id)
    except team.NoSuchMember as exc:
        raise Http404(str(exc)) from exc
    except team.TeamError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Member removed.")
    return redirect("pages:team")


@login_required
@require_POST
def team_leave(request: HttpRequest) -> HttpResponseRedirect:
    acting = _acting(request)
    try:
        team.leave(account_id=acting.account_id, user=acting.user)
    except team.TeamError as exc:
        messages.error(request, str(exc))
        return redirect("pages:team")
    request.session.pop(tenancy.SESSION_ACCOUNT_KEY, None)
    messages.success(request, f"You left {acting.account_name}.")
    return redirect("pages:dashboard")


@login_required
@require_POST
def account_switch(request: HttpRequest) -> HttpResponseRedirect:
    """Acts in another account the person belongs to (the session remembers it)."""
    raw = request.POST.get("account", "")
    membership = (
        Membership.objects.select_related("account")
        .filter(user_id=_acting(request).user.pk, account_id=int(raw))
        .first()
        if raw.isdigit() and len(raw) < 19
        else None
    )
    if membership is None:
        messages.error(request, "You are not a member of that account.")
        return redirect("pages:dashboard")
    request.session[tenancy.SESSION_ACCOUNT_KEY] = membership.account_id
    messages.success(request, f"You are now in {membership.account.name} (as {membership.role}).")
    return redirect("pages:dashboard")


def invitation(request: HttpRequest, secret: str) -> HttpResponse:
    """An invitation link: signed in, join; signed out, sign up with the invited email (or
    sign in, then come back). A used, revoked, expired or forged link: a plain error page."""
    found = team.open_invitation(secret)
    if found is None:
        return render(request, "pages/invitation_invalid.html", status=410)
    user = request.user
    if isinstance(user, User) and user.is_authenticated:
        if request.method == "POST":
            return _join(request, secret, user)
        return render(request, "pages/invitation.html", {"invitation": found})
    form = JoinForm(request.POST or None)
    taken = get_user_model()._default_manager.filter(username__iexact=found.email).exists()
    if request.method == "POST" and not taken and form.is_valid():
        try:
            new_user = _sign_up(found.email, form.cleaned_data["password"])
        except ValidationError as exc:
            form.add_error("password", exc)
        else:
            login(request, new_user, backend="django.contrib.auth.backends.ModelBackend")
            return _join(request, secret, new_user)
    context = {"invitation": found, "form": form, "taken": taken}
    return render(request, "pages/invitation.html", context, status=400 if form.errors else 200)


def _sign_up(email: str, password: str) -> User:
    validate_password(password, User(username=email, email=email))
    try:
        with transaction.atomic():
            user = get_user_model()._default_manager.create_user(
                username=email, email=email, password=password
            )
    except IntegrityError as exc:
        raise ValidationError("An account with this email exists: sign in to accept.") from exc
    assert isinstance(user, User)
    return user


def _join(request: HttpRequest, secret: str, user: User) -> HttpResponse:
    try:
        membership = team.accept(secret=secret, user=user)
    except team.TeamError as exc:
        return render(request, "pages/invitation_invalid.html", {"message": str(exc)}, status=410)
    request.session[tenancy.SESSION_ACCOUNT_KEY] = membership.account_id
    messages.success(request, f"You joined {membership.account.name} as {membership.role}.")
    return redirect("pages:dashboard")
