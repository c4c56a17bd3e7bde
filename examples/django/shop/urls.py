from django.contrib import admin
from django.urls import path

from payouts import views

urlpatterns = [
    path('admin/', admin.site.urls),
    path('moderation/', views.queue, name='moderation'),
    path('moderation/<int:pk>/', views.decide, name='decide'),
]
