from tests.e2e.support import require_browser

require_browser()

D = "/tmp/issue6-shots"


def test_shots(stage):
    fac = stage.facilitator()
    page = fac.page
    page.screenshot(path=f"{D}/dashboard.png", full_page=True)
    page.goto("/scenarios/")
    page.get_by_role("button", name="Copy and edit").first.click()
    page.wait_for_selector(".scenario-form")
    page.screenshot(path=f"{D}/editor-copy-desktop.png", full_page=True)
    page.fill("#id_title", "Phones in lessons")
    page.fill("#id_positions-3-name", "Ban at lunch too")
    page.fill("#id_positions-3-summary", "Also at lunch.")
    page.get_by_role("button", name="Save scenario").click()
    page.wait_for_selector(".briefing-doc")
    page.screenshot(path=f"{D}/custom-briefing-desktop.png", full_page=True)
    page.goto("/scenarios/")
    page.screenshot(path=f"{D}/scenario-list.png", full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=f"{D}/scenario-list-phone.png", full_page=True)
    page.goto("/scenarios/new/")
    page.get_by_role("button", name="Save scenario").click()
    page.screenshot(path=f"{D}/editor-errors-phone.png", full_page=True)
    page.goto("/")
    page.set_viewport_size({"width": 1366, "height": 800})
    page.select_option("#id_scenario", label="Phones in lessons")
    page.fill("#id_title", "Custom room")
    page.get_by_role("button", name="Open room").click()
    page.get_by_role("link", name="Open the facilitator console").click()
    page.wait_for_selector("#advance")
    page.screenshot(path=f"{D}/custom-room-console.png", full_page=True)
