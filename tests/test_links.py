from composer import links


def test_normalize_treats_arxiv_forms_as_one_paper() -> None:
    forms = [
        "https://arxiv.org/pdf/2504.07086",
        "https://arxiv.org/abs/2504.07086v2",
        "http://www.arxiv.org/pdf/2504.07086v1.pdf",
        "https://arxiv.org/html/2504.07086/",
    ]
    assert {links.normalize(u) for u in forms} == {"arxiv:2504.07086"}


def test_normalize_ignores_scheme_www_slash_tracking_and_fragment() -> None:
    a = "https://www.together.ai/blog/deepcoder/?utm_source=x&_bhlid=1#top"
    assert links.normalize(a) == links.normalize("http://together.ai/blog/deepcoder")
    assert links.normalize("https://ex.com/a?id=1") != links.normalize("https://ex.com/a?id=2")


def test_strip_tracking_keeps_everything_else_as_written() -> None:
    url = "https://ex.com/p?tab=readme-ov-file&utm_source=a&Utm_Medium=b&q=a%20b#frag"
    assert links.strip_tracking(url) == "https://ex.com/p?tab=readme-ov-file&q=a%20b#frag"
    assert links.tracking_params(url) == ["utm_source", "Utm_Medium"]
    assert links.strip_tracking("https://ex.com/p?utm_source=a#x") == "https://ex.com/p#x"


def test_url_problems_word_for_word() -> None:
    assert links.url_problem("https://arxiv.org/abs/1") is None
    assert links.url_problem("//cdn.example.com/x") == (
        "URL '//cdn.example.com/x' is relative: links in an email need https://host/..."
    )
    assert links.url_problem("mailto:a@b.c") == (
        "URL 'mailto:a@b.c' uses mailto:, not http(s): readers' mail clients will not open it"
    )
    assert links.url_problem("https://[::1/x") == (
        "URL 'https://[::1/x' is malformed (Invalid IPv6 URL)"
    )
