from django.apps import AppConfig


class InterfacesConfig(AppConfig):
    name = "bulletin.interfaces"
    label = "bulletin_interfaces"
    verbose_name = "Bulletin interfaces"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from bulletin.interfaces.accounts import link_at_sign_in

        user_logged_in.connect(link_at_sign_in, dispatch_uid="bulletin.link_at_sign_in")
