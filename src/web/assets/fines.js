// Progressive enhancement for the fines page: keep the selected total up to date and announce it.
// The server computes the real total from Alma; this is only a convenience for the patron.
(function () {
  var form = document.getElementById('pay-form')
  if (!form) return
  var output = document.getElementById('selected-total')
  var button = document.getElementById('pay-button')
  var hint = document.getElementById('pay-hint')
  var hintText = hint ? hint.textContent : ''
  var currency = form.getAttribute('data-currency') || 'USD'
  var minimum = Number(form.getAttribute('data-min-cents') || '0')
  var locale = document.documentElement.getAttribute('lang') || 'en'
  var format = function (cents) {
    try { return new Intl.NumberFormat(locale, { style: 'currency', currency }).format(cents / 100) } catch (e) { return (cents / 100).toFixed(2) }
  }
  // PARTIAL_PAYMENTS: a fee's amount field, when it holds a plain amount, counts instead of its balance
  var partCents = function (box) {
    var cents = Number(box.getAttribute('data-cents'))
    var field = document.getElementById('amount-' + box.value)
    if (!field) return cents
    var match = /^\s*(\d{1,9})(?:\.(\d{1,2}))?\s*$/.exec(field.value)
    if (!match) return cents
    return Number(match[1]) * 100 + Number(((match[2] || '') + '00').slice(0, 2))
  }
  var update = function () {
    var boxes = form.querySelectorAll('input[name="fee"]')
    var total = 0
    var count = 0
    for (var i = 0; i < boxes.length; i++) {
      if (boxes[i].checked) { total += partCents(boxes[i]); count++ }
    }
    if (output) output.textContent = format(total)
    var tooSmall = count > 0 && total < minimum
    if (button) {
      button.disabled = count === 0 || tooSmall
      button.textContent = count === 0 ? 'Choose a fee to pay' : 'Pay ' + format(total)
    }
    if (hint) hint.textContent = tooSmall ? 'Choose more fees: the smallest online payment is ' + format(minimum) + '.' : hintText
  }
  form.addEventListener('change', update)
  form.addEventListener('input', update)
  // a second click while the browser is already on its way would start a second checkout
  form.addEventListener('submit', function () {
    if (button) window.setTimeout(function () { button.disabled = true }, 0)
  })
  window.addEventListener('pageshow', update)
  update()
})()
