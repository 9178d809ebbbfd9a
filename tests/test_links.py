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
    # Issue 10 item 8: mail clients do open mailto: links; only an entry's title must be
    # http(s) (the paper itself), and running text may give an address.
    assert links.url_problem("mailto:a@b.c") == (
        "URL 'mailto:a@b.c' is a mailto: link: an entry's title links to the paper or "
        "post itself, over https://"
    )
    assert links.url_problem("mailto:research@covar.com", mailto=True) is None
    assert links.url_problem("mailto:research@covar.com?subject=Hi%20there", mailto=True) is None
    assert links.url_problem("mailto:a@b.c", mailto=True) is None
    assert links.url_problem("mailto:not-an-address", mailto=True) == (
        "URL 'mailto:not-an-address' is a mailto: link without a valid email address"
    )
    assert links.url_problem("mailto:a@b.c,evil@x.example", mailto=True) == (
        "URL 'mailto:a@b.c,evil@x.example' is a mailto: link without a valid email address"
    )
    assert links.url_problem("javascript:alert(1)", mailto=True) == (
        "URL 'javascript:alert(1)' uses javascript:, not http(s): "
        "readers' mail clients will not open it"
    )
    assert links.url_problem("https://[::1/x") == (
        "URL 'https://[::1/x' is malformed (Invalid IPv6 URL)"
    )
