from django.apps import AppConfig
from django.db.models.signals import post_migrate


class DomainConfig(AppConfig):
    name = "bulletin.domain"
    label = "bulletin"
    verbose_name = "Bulletin"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from bulletin.domain.roles import ensure_roles

        post_migrate.connect(ensure_roles, sender=self)
