// The receipt while a payment is still on its way (waiting for CashNet, or being recorded in Alma): check the
// ledger again in the background and swap in the new receipt when its state changes, announcing the new heading.
// No page reloads, so a screen reader keeps its place; without JavaScript the "Check again now" link does the same.
(function () {
  var receipt = document.getElementById('receipt')
  var live = document.getElementById('receipt-live')
  if (!receipt || receipt.getAttribute('data-pending') !== 'true' || !window.fetch || !window.DOMParser) return
  var delays = [2, 3, 5, 5, 10]
  var attempt = 0
  var started = Date.now()
  var GIVE_UP_MS = 10 * 60 * 1000
  var note = function (text) {
    var node = receipt.querySelector('.auto-note')
    if (node) node.textContent = text
  }
  note('This page checks again by itself.')
  var check = function () {
    var url = receipt.getAttribute('data-check')
    window.fetch(url, { credentials: 'same-origin', headers: { accept: 'text/html' }, cache: 'no-store' })
      .then(function (response) { return response.ok ? response.text() : null })
      .then(function (text) {
        var next = text === null ? null : new DOMParser().parseFromString(text, 'text/html')
        var fresh = next && next.getElementById('receipt')
        if (fresh && fresh.getAttribute('data-state') !== receipt.getAttribute('data-state')) {
          receipt.innerHTML = fresh.innerHTML
          receipt.setAttribute('data-state', fresh.getAttribute('data-state'))
          receipt.setAttribute('data-pending', fresh.getAttribute('data-pending'))
          document.title = next.title
          var heading = receipt.querySelector('h1')
          if (live && heading) live.textContent = heading.textContent
          if (window.localiseDates) window.localiseDates(receipt)
          if (fresh.getAttribute('data-pending') === 'true') note('This page checks again by itself.')
        }
        schedule()
      })
      .catch(schedule)
  }
  var schedule = function () {
    if (receipt.getAttribute('data-pending') !== 'true') return
    if (Date.now() - started > GIVE_UP_MS) {
      note('This is taking longer than usual. You do not need to pay again.')
      return
    }
    window.setTimeout(check, 1000 * delays[Math.min(attempt++, delays.length - 1)])
  }
  schedule()
})()
