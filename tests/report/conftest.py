"""Fixtures of the report tests (helpers in report_projects.py)."""
import pytest

from report_projects import make_case_project


@pytest.fixture
def project(tmp_path):
    folder = tmp_path / "PROJECT"
    make_case_project(folder)
    return folder
