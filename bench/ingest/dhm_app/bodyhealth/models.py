"""The models the package expects its user to write: a Health subclass, an alarm bound to it and
one HealthTest per test. Same shape as the package's test app: `heart` in group `doctor`, scored
>120 → 4, >100 → 3, >80 → 2, else 1 (the thresholds Vitals gets from its [[score]] config)."""
from django.db import models

from health_monitor.models import Health, HealthAlarm, HealthTest


class BodyHealth(Health):
    pass


class BodyHealthAlarm(HealthAlarm):
    health_model = BodyHealth


class HeartHealthTest(HealthTest):
    heartrate = models.IntegerField()

    health_model = BodyHealth
    groups = ["doctor"]
    test = "heart"

    @staticmethod
    def score(heartrate, **kwargs):
        heartrate = int(heartrate)
        if heartrate > 120:
            return 4
        if heartrate > 100:
            return 3
        if heartrate > 80:
            return 2
        return 1
