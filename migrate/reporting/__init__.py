"""Reports: a result model read from the journal, and its renderings (HTML, PDF, JSON, CSV), batch summaries,
onboarding guides and the DNS cut-over checklist."""

from migrate.reporting.model import ReportData, from_journal, from_path, from_plan, report_data
from migrate.reporting.render import render_html

__all__ = ["ReportData", "from_journal", "from_path", "from_plan", "render_html", "report_data"]
