// Shows dates in the patron's own locale; the server writes ISO dates that stay readable without JavaScript.
(function () {
  var localise = function (root) {
    var nodes = (root || document).querySelectorAll('time[datetime]')
    for (var i = 0; i < nodes.length; i++) {
      var day = /^(\d{4})-(\d{2})-(\d{2})$/.exec(nodes[i].getAttribute('datetime') || '')
      if (!day) continue
      // a calendar day, not an instant: build it at local noon so no time zone moves it to the day before
      var value = new Date(Number(day[1]), Number(day[2]) - 1, Number(day[3]), 12)
      if (!isNaN(value.getTime())) nodes[i].textContent = value.toLocaleDateString(undefined, { year: 'numeric', month: 'short', day: 'numeric' })
    }
  }
  window.localiseDates = localise
  localise(document)
})()
