"""Show a test module's figures (outputs compared, fuzz inputs tried, ...) in a passing run.

pytest captures what tests print; the figures the closing notes quote must appear anyway, so
they are written to the terminal reporter with capture suspended.
"""


def show(request, text):
    """Write `text` to the terminal past pytest's output capture (plain print otherwise)."""
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if capture is not None and reporter is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(text)
    else:
        print(text)
