"""The package's views bound to the models above, as its documentation asks."""
from health_monitor.views import HealthAlarmView, HealthTestView, HealthView

from bodyhealth.models import BodyHealth, BodyHealthAlarm


class BodyHealthView(HealthView):
    health_model = BodyHealth


class BodyHealthAlarmView(HealthAlarmView):
    health_alarm_model = BodyHealthAlarm


class BodyHealthTestView(HealthTestView):
    pass
