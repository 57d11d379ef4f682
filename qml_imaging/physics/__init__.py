"""Physics of imaging with light: shot noise, parameterised image families, estimation bounds."""
