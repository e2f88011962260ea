// The receipt's "Print this receipt" button: hidden without JavaScript (the page says to use the browser's Print
// command instead), shown and wired to window.print() when scripts run.
(function () {
  var buttons = document.querySelectorAll('.print-button')
  for (var i = 0; i < buttons.length; i++) {
    buttons[i].hidden = false
    buttons[i].addEventListener('click', function () { window.print() })
  }
  var hints = document.querySelectorAll('.print-hint')
  for (var j = 0; j < hints.length; j++) hints[j].hidden = true
})()
