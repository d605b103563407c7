// Submits the page's form once loaded: a light token (eIDAS) or any other
// message carried by the browser in an auto-submitted POST. The form's
// button stays for browsers without script.
document.addEventListener("DOMContentLoaded", function () {
  var f = document.querySelector("form[data-autosubmit]");
  if (f) { f.submit(); }
});
