from django.apps import AppConfig


class InterfacesConfig(AppConfig):
    name = "bulletin.interfaces"
    label = "bulletin_interfaces"
    verbose_name = "Bulletin interfaces"
