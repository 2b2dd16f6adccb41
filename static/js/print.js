// A print button without inline script (Content-Security-Policy): any [data-print] prints the page.
for (const button of document.querySelectorAll("[data-print]")) {
  button.addEventListener("click", () => window.print());
}
