"""Provider event webhooks for bounces and complaints, under /bounces/webhooks/ (README,
"Bounces and complaints"): only anymail's tracking views for the five providers Bulletin
documents, not all of ``anymail.urls`` (inbound mail and other providers stay unserved)."""

from django.urls import path

from bulletin.interfaces.bounce_webhooks import (
    AmazonSesView,
    BrevoView,
    MailgunView,
    PostmarkView,
    SendGridView,
    endpoint,
)

urlpatterns = [
    path("amazon_ses/", endpoint("amazon_ses", AmazonSesView), name="bounces-amazon-ses"),
    path("sendgrid/", endpoint("sendgrid", SendGridView), name="bounces-sendgrid"),
    path("mailgun/", endpoint("mailgun", MailgunView), name="bounces-mailgun"),
    path("postmark/", endpoint("postmark", PostmarkView), name="bounces-postmark"),
    path("brevo/", endpoint("brevo", BrevoView), name="bounces-brevo"),
]
