// The checkout hand-off: say what is happening, then send the form to CashNet. Without JavaScript the
// visible "Continue to CashNet" button does the same.
(function () {
  var form = document.getElementById('cashnet-form')
  if (!form) return
  var status = document.getElementById('handoff-status')
  if (status) status.textContent = 'Taking you to CashNet, the university\u2019s secure payment page\u2026'
  window.setTimeout(function () { form.submit() }, 400)
})()
