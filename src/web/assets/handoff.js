// The checkout hand-off: say what is happening, then send the form to CashNet. Without JavaScript the
// visible "Continue to CashNet" button does the same. The short pause lets a screen reader announce the status.
(function () {
  var form = document.getElementById('cashnet-form')
  if (!form) return
  var status = document.getElementById('handoff-status')
  var button = document.getElementById('continue-button')
  var sent = false
  var send = function () {
    if (sent) return
    sent = true
    if (button) button.textContent = 'Opening CashNet\u2026'
    form.submit()
  }
  form.addEventListener('submit', function (event) {
    event.preventDefault()
    send()
  })
  if (status) status.textContent = 'Taking you to CashNet, the university\u2019s secure payment page\u2026 If nothing happens in a few seconds, select \u201cContinue to CashNet\u201d.'
  window.setTimeout(send, 600)
  // Back from CashNet with the browser's Back button: do not bounce the patron there again.
  window.addEventListener('pageshow', function (event) {
    if (!event.persisted) return
    sent = false
    if (button) button.textContent = 'Continue to CashNet'
    if (status) status.textContent = 'You came back from CashNet. Select \u201cContinue to CashNet\u201d to pay, or go back to your fines.'
  })
})()
