from django.apps import AppConfig


class DomainConfig(AppConfig):
    name = "bulletin.domain"
    label = "bulletin"
    verbose_name = "Bulletin"
    default_auto_field = "django.db.models.BigAutoField"
