/*
 * The resume page of django-hyperid-mfa (templates/hyperid_mfa/resume.html): submits
 * the kept form once, as soon as the page is shown. A form marked without
 * data-auto (its files could not be kept) waits for the user's click.
 */
(function () {
  "use strict";
  var form = document.getElementById("hyperid-mfa-resume");
  if (!form || form.getAttribute("data-auto") !== "true") {
    return;
  }
  form.submit();
})();
