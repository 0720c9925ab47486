// The start-a-job form: show only the options of the chosen kind. Without this file every
// group of options is shown and the server uses those of the chosen kind.
document.addEventListener("DOMContentLoaded", function () {
  var kind = document.getElementById("job_type");
  if (!kind) {
    return;
  }
  function show() {
    document.querySelectorAll("fieldset[data-kind]").forEach(function (group) {
      group.hidden = group.getAttribute("data-kind") !== kind.value;
    });
  }
  kind.addEventListener("change", show);
  show();
});
