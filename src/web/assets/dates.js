// Shows dates in the patron's own locale; the server writes ISO dates that stay readable without JavaScript.
(function () {
  var nodes = document.querySelectorAll('time[datetime]')
  for (var i = 0; i < nodes.length; i++) {
    var value = new Date(nodes[i].getAttribute('datetime'))
    if (!isNaN(value.getTime())) nodes[i].textContent = value.toLocaleDateString(undefined, { year: 'numeric', month: 'short', day: 'numeric' })
  }
})()
