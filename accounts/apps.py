from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from django.conf import settings
        from django.db.models.signals import post_save

        from accounts import schema  # noqa: F401 (registers the OpenAPI auth scheme)
        from accounts.signals import user_saved

        post_save.connect(user_saved, sender=settings.AUTH_USER_MODEL, dispatch_uid="own-account")
