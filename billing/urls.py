"""Routes of the customer API (``/config``, ``/create-customer``...), at the site root."""

from django.urls import URLPattern, URLResolver, path

from billing import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("config", views.ConfigView.as_view(), name="billing-config"),
    path("create-customer", views.CreateCustomerView.as_view(), name="billing-create-customer"),
    path(
        "create-subscription",
        views.CreateSubscriptionView.as_view(),
        name="billing-create-subscription",
    ),
    path("charge", views.ChargeView.as_view(), name="billing-charge"),
    path("customer", views.CustomerView.as_view(), name="billing-customer"),
    path(
        "customer/<str:customer_id>", views.CustomerByIdView.as_view(), name="billing-customer-id"
    ),
    path("webhook", views.webhook, name="billing-webhook"),
    path("subscriptions", views.SubscriptionListView.as_view(), name="billing-subscriptions"),
    path(
        "subscriptions/<str:subscription_id>/cancel",
        views.SubscriptionCancelView.as_view(),
        name="billing-subscription-cancel",
    ),
    path(
        "subscriptions/<str:subscription_id>/resume",
        views.SubscriptionResumeView.as_view(),
        name="billing-subscription-resume",
    ),
    path("invoice-preview", views.InvoicePreviewView.as_view(), name="billing-invoice-preview"),
    path("customer-portal", views.CustomerPortalView.as_view(), name="billing-customer-portal"),
    path("device-orders", views.DeviceOrderListView.as_view(), name="billing-device-orders"),
]
