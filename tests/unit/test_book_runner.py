"""The book runner's argument checks (elens_utils.book.chapters), before anything runs."""

import pytest

from elens_utils import ElensError
from elens_utils.book import chapters


def test_build_book_refuses_an_unknown_run_option_before_doing_anything(tmp_path):
    with pytest.raises(ElensError, match=r"does not take \['forse'\]: its run options are force and progress"):
        chapters.build_book("smoke", root=tmp_path / "elsewhere", forse=True)
    assert not (tmp_path / "elsewhere").exists()  # nothing staged
