// The report's print button (a separate file: the page's CSP allows no inline script).
document.addEventListener('DOMContentLoaded', function () {
  var b = document.getElementById('print');
  if (b) b.addEventListener('click', function () { window.print(); });
});
