"""The display service (DESIGN.md, "Local display and buttons"): OLEDs, a TM1638 board and
GPIO LEDs showing pages and indicator lamps; an MQTT client only, never touching a relay.

The pure parts and how the service drives them (every call takes the time; no clock inside):

- ``config.DisplaySection``: ``displays`` (backend, size, i2c_address, page_s, dim_after_s,
  blank_after_s, pages, language), ``indicators`` (gpio or tm1638_led, ``when`` in the
  automation's condition grammar), ``signals``, ``stale_after_s``.
- ``model.BoxTracker(stale_after_s, tz)``: subscribe to ``<p>/+/+/state``,
  ``<p>/+/+/availability`` and ``<p>/+/status``; hand each message to
  ``feed(Topics.parse(topic), payload, received_epoch_s)``; ``view(now)`` -> ``BoxView``;
  ``snapshot(now, signals)`` -> the conditions' ``Snapshot`` for the indicators.
- ``pages.Pager(pages, page_s, dim_after_s, blank_after_s, start)``: per screen,
  ``tick(now, [a.key for a in view.alerts])`` at each frame and ``button(now, page=None)``
  on a press, each
  returning the ``Screen`` (page, light) to draw.
- ``render.render(view, screen, (w, h), lang)`` -> a 1-bit Pillow image;
  ``render.show(luma_device, image, light, contrast, dim_contrast)`` puts it on an OLED or
  luma's dummy device (whose ``.image`` the dummy backend saves as PNG, the api serves).
- ``indicators.Indicators(configs).evaluate(snapshot)`` -> lamp name -> lit;
  ``indicators.level(config, lit)`` -> the GPIO level (active_high).
"""
